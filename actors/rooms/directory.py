"""Read model of rooms: membership, timelines and message metadata.

Bodies stay sealed here; they are opened per read by the API layer (so no
plaintext lives in memory longer than a request). Each room has a main
timeline (top-level messages and echoed thread replies) and one timeline
per thread, both ``array('q')`` of stream sequences for cursor paging.
Message views are kept only for each room's hot window
(``actors/rooms/hot.py``); ``facts`` answers from compact columns for any
message of history (``actors/rooms/index.py``), and older views are read
back from the stream (``chatto/messaging/cold.py``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from actors.events import Recorded
from actors.notifications.events import ThreadFollowed, ThreadUnfollowed
from actors.rooms import followers
from actors.rooms.apply import apply_message
from actors.rooms.cold_apply import apply_group
from actors.rooms.coldcache import PageCache
from actors.rooms.events import (
    MemberBanned,
    MemberDeleted,
    MemberJoined,
    MemberLeft,
    MemberUnbanned,
    MessagePinned,
    MessageUnpinned,
    RoomArchived,
    RoomCreated,
    RoomUpdated,
)
from actors.rooms.hot import HotWindow, drop_retracted
from actors.rooms.index import ECHO, RETRACTED, Authors, Facts
from actors.rooms.pins import apply_pin
from actors.rooms.resident import IndexCache, IndexObjects
from actors.rooms.rows import message_from_row, message_row, room_from_row, room_row
from actors.rooms.views import (
    AttachmentView,
    GroupView,
    MessageView,
    RoomView,
    Timeline,
)
from actors.users.events import UserDeleted


def live_topics(rec: Recorded) -> Iterable[str]:
    """Where the projector routes an event: its entity, plus the member it is about."""
    yield rec.envelope.entity.key
    ev = rec.envelope.event
    if isinstance(ev, MemberJoined | MemberLeft | MemberBanned | MemberDeleted):
        yield f"user.{ev.user_id}"


class RoomDirectory:
    """Projection of every room."""

    snapshot_name = "rooms"
    # 2: reaction keys in canonical form (actors/rooms/reactions.py).
    # 3: ban details and pinned messages per room.
    # 4: touch index and tombstones per room (issue #22).
    # 5: compact post columns and id index per room, interned authors.
    # 6: only the hot window's views; timelines and unread indexes as arrays.
    # 7: the id index hashes new_id ids from base 36 (actors/rooms/index.py).
    # 8: the id index as tables that are never rehashed.
    # 9: each room's history index as its own object, referenced (resident.py).
    # 10: thread followers in the room's index (no longer a set per thread
    #     in the notification feed).
    snapshot_schema = 10

    def __init__(
        self,
        cold_pages: int = 256,
        hot_messages: int = 100,
        hot_rooms: int = 500,
        index_rooms: int = 2000,
        objects: IndexObjects | None = None,
        index_bytes: int = 0,
    ) -> None:
        self.cold_pages = PageCache(cold_pages)
        self.hot = HotWindow(hot_messages, hot_rooms)
        self.authors = Authors()
        self.indexes = IndexCache(self.authors, index_rooms, objects, index_bytes)
        self.indexes.refs_of = self._index_refs
        self.rooms: dict[str, RoomView] = {}
        self.messages: dict[str, MessageView] = {}
        self.by_member: dict[str, set[str]] = {}
        self.groups: dict[str, GroupView] = {}

    def export_state(self, inline: bool = False) -> dict[str, Any]:
        """Rooms (attachments in their indexes), messages (rows in field order),
        groups, member index."""
        return {
            "rooms": {i: room_row(r, self.indexes.entry(r, inline)) for i, r in self.rooms.items()},
            "messages": {i: message_row(m) for i, m in self.messages.items()},
            "by_member": {u: sorted(r) for u, r in self.by_member.items()},
            "groups": {i: g.name for i, g in self.groups.items()},
            "authors": self.authors.export(),
            "hot_rooms": list(self.hot.rooms),
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        self.authors = self.indexes.authors = Authors.restore(state["authors"])
        self.messages = {m.id: m for m in map(message_from_row, state["messages"].values())}
        for m in self.messages.values():  # one string object per id, as live
            m.thread_root, m.in_reply_to = (
                self.same_id(m.thread_root),
                self.same_id(m.in_reply_to),
            )
        self.rooms = {
            i: room_from_row(row, self.messages, self.authors) for i, row in state["rooms"].items()
        }
        await self.indexes.restored(self.rooms.values())
        for m in sorted(self.messages.values(), key=lambda m: m.seq):
            self.rooms[m.room_id].hot[m.seq] = m
        for room, view in self.hot.restore(state["hot_rooms"], self.rooms):
            self._evict(room, view)
        self.by_member = {u: set(r) for u, r in state["by_member"].items()}
        self.groups = {i: GroupView(i, name) for i, name in state["groups"].items()}

    async def ensure(self, *room_ids: str) -> None:
        """Load the history indexes of these rooms (unknown ids are skipped).

        Every async reader calls this right before the synchronous API
        (``facts``, ``room.timeline``...), with no ``await`` in between.
        """
        await self.indexes.ensure([r for i in room_ids if (r := self.rooms.get(i)) is not None])

    async def prepare(self, batch: list[Recorded]) -> None:
        """The projector's hook: the batch's rooms are resident while it is applied."""
        ids = {rec.envelope.entity.id for rec in batch if rec.envelope.entity.kind == "room"}
        # A thread (un)follow changes the room's followers (the notification feed).
        ids.update(
            rec.envelope.event.room_id
            for rec in batch
            if isinstance(rec.envelope.event, ThreadFollowed | ThreadUnfollowed)
        )
        rooms = [r for i in ids if (r := self.rooms.get(i)) is not None]
        await self.indexes.ensure(rooms, pin=True)
        if batch:  # the state is as of the sequence before the batch
            await self.indexes.spill(batch[0].seq - 1)

    def _index_refs(self) -> set[str]:
        return {r.index_ref for r in self.rooms.values() if r.index_ref}

    async def persist_objects(self, seq: int) -> None:
        """Before a snapshot is exported: write the changed indexes as objects."""
        await self.indexes.persist(self.rooms, seq)

    async def snapshot_saved(self) -> None:
        """After a snapshot is saved: delete index objects no longer referenced."""
        await self.indexes.saved()

    def rooms_touched_by(self, user_id: str) -> set[str]:
        """Rooms the user is in or has written in (account deletion)."""
        rooms = self.rooms_of(user_id)
        author = self.authors.find(user_id)
        if author >= 0:
            rooms.update(r.id for r in self.rooms.values() if author in r.authors)
        rooms.update(r.id for r in self.rooms.values() if user_id in r.participants)
        return rooms

    def facts(self, room_id: str, message_id: str) -> Facts | None:
        """What is known of any message of the room, hot or cold (no I/O)."""
        room = self.rooms.get(room_id)
        if room is None or not message_id:
            return None
        posts = room.posts
        at = posts.find(message_id)
        if at < 0:
            return None
        flags, root, replied = posts.flags[at], posts.roots[at], posts.replied[at]
        return Facts(
            message_id,
            room_id,
            posts.seqs[at],
            self.authors.ids[posts.authors[at]],
            posts.root_ids.get(root, "") if root else "",
            bool(flags & ECHO),
            bool(flags & RETRACTED),
            self.authors.ids[replied] if replied >= 0 else "",
        )

    def thread_followers(self, room_id: str, root_id: str) -> list[str]:
        """Who follows the thread (the room's index must be resident)."""
        room = self.rooms.get(room_id)
        users = room.index.followers.get(root_id) if room is not None else None
        return [self.authors.ids[n] for n in users] if users else []

    def set_follower(self, room_id: str, root_id: str, user_id: str, on: bool) -> None:
        """Add or remove a follower of the thread (the index must be resident)."""
        room = self.rooms.get(room_id)
        if room is None:
            return
        if on:
            changed = followers.add(room.index.followers, root_id, self.authors.index(user_id))
        else:
            changed = followers.remove(room.index.followers, root_id, self.authors.find(user_id))
        if changed:
            self.indexes.changed(room)

    def attachment(self, room_id: str, att_id: str) -> AttachmentView | None:
        """The room's attachment (its index must be resident: ``ensure``)."""
        room = self.rooms.get(room_id)
        return room.attachments.get(att_id) if room is not None else None

    def view(self, room_id: str, message_id: str) -> MessageView | None:
        """The message's view if it is in the hot window (else see ``ColdReader``)."""
        msg = self.messages.get(message_id)
        return msg if msg is not None and msg.room_id == room_id else None

    def cache_statistics(self) -> dict[str, int]:
        """The hot window and the cold page cache, for /readyz and /metrics."""
        return {
            **self.cold_pages.statistics(),
            **self.hot.statistics(),
            **self.indexes.statistics(),
            "hot_messages": len(self.messages),
        }

    def rooms_of(self, user_id: str) -> set[str]:
        return set(self.by_member.get(user_id, ()))

    def co_members(self, user_id: str) -> set[str]:
        """Everyone who shares a room or DM with the user (the user included)."""
        out: set[str] = set()
        for room_id in self.by_member.get(user_id, ()):
            room = self.rooms.get(room_id)
            if room is not None:
                out |= room.members
        return out

    def is_member(self, room_id: str, user_id: str) -> bool:
        room = self.rooms.get(room_id)
        return room is not None and user_id in room.members

    def apply(self, rec: Recorded) -> None:
        kind = rec.envelope.entity.kind
        if kind == "user" and isinstance(rec.envelope.event, UserDeleted):
            self.cold_pages.clear()  # shredded: nothing of theirs outlives it
            return
        if kind == "group":
            apply_group(self.groups, self.rooms.values(), rec)
            return
        if kind != "room":
            return
        room_id = rec.envelope.entity.id
        ev = rec.envelope.event
        if isinstance(ev, RoomCreated):
            self.rooms[room_id] = RoomView(
                room_id,
                ev.name,
                ev.topic,
                ev.kind,
                ev.created_by,
                rec.envelope.at_ms,
                ev.group_id,
                ev.read_only,
                participants=ev.participants,
            )
            self.indexes.track(self.rooms[room_id])
            return
        room = self.rooms.get(room_id)
        if room is None:
            return
        self._apply_room(room, rec)

    def _apply_room(self, room: RoomView, rec: Recorded) -> None:
        ev = rec.envelope.event
        if isinstance(ev, RoomUpdated):
            room.name, room.topic, room.group_id = ev.name, ev.topic, ev.group_id
        elif isinstance(ev, RoomArchived):
            room.archived = ev.archived
        elif isinstance(ev, MemberJoined):
            room.members.add(ev.user_id)
            self.by_member.setdefault(ev.user_id, set()).add(room.id)
        elif isinstance(ev, MemberLeft | MemberBanned):
            room.members.discard(ev.user_id)
            self.by_member.get(ev.user_id, set()).discard(room.id)
            if isinstance(ev, MemberBanned):
                room.bans[ev.user_id] = ev.until_ms
                room.ban_details[ev.user_id] = (ev.by, ev.reason, rec.envelope.at_ms)
        elif isinstance(ev, MemberUnbanned):
            room.bans.pop(ev.user_id, None)
            room.ban_details.pop(ev.user_id, None)
        elif isinstance(ev, MessagePinned | MessageUnpinned):
            apply_pin(room.pins, ev)
        elif isinstance(ev, MemberDeleted):
            room.members.discard(ev.user_id)
            self.by_member.pop(ev.user_id, None)
            self.cold_pages.forget_room(room.id)
            for att in room.attachments.values():  # resident: a room event (prepare)
                if att.author_id == ev.user_id:
                    att.removed = True
            self.indexes.changed(room)
        else:
            self._apply_message(room, rec)

    def same_id(self, message_id: str) -> str:
        known = self.messages.get(message_id) if message_id else None
        return known.id if known is not None else message_id

    def _apply_message(self, room: RoomView, rec: Recorded) -> None:
        apply_message(self, room, rec)  # also the cold path's fold (fold.py)

    # --- the hot window (actors/rooms/hot.py) ----------------------------------------
    def settle(self, room: RoomView) -> None:
        """After a post: views below the room's window leave, and so do those
        of the least recently used room beyond ``hot_rooms``."""
        for view in self.hot.leaving(room):
            self._evict(room, view)
        if not room.hot:
            return
        out = self.hot.touch(room.id)
        coldest = self.rooms.get(out) if out is not None else None
        if coldest is not None:
            for view in self.hot.empty(coldest):
                self._evict(coldest, view)

    def _evict(self, room: RoomView, view: MessageView) -> None:
        self.messages.pop(view.id, None)
        if view.retracted:  # its post is erased: absent from now on, as on a replay
            room.tombstones.pop(view.seq, None)
            main = not view.thread_root or view.echo
            if room.resident is None:  # applied when the index is next loaded
                room.pending.append((view.seq, view.thread_root, main, True))
            else:
                drop_retracted(room, view.seq, view.thread_root, main, tombstone=True)
                self.indexes.changed(room)
            self.cold_pages.forget_room(room.id)


__all__ = [
    "AttachmentView",
    "GroupView",
    "MessageView",
    "RoomDirectory",
    "RoomView",
    "Timeline",
    "live_topics",
]
