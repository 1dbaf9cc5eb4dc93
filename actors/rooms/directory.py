"""Read model of rooms: membership, timelines and message metadata.

Bodies stay sealed here; they are opened per read by the API layer (so no
plaintext lives in memory longer than a request). Each room has a main
timeline (top-level messages and echoed thread replies) and one timeline
per thread, both ordered by stream sequence for cursor paging.
"""

from __future__ import annotations

import bisect
import sys
from collections.abc import Iterable
from typing import Any

import attrs

from actors.events import Recorded
from actors.groups import GroupDeleted, GroupRenamed
from actors.rooms.coldcache import PageCache
from actors.rooms.events import (
    AttachmentUploaded,
    GroupCreated,
    MemberBanned,
    MemberDeleted,
    MemberJoined,
    MemberLeft,
    MemberUnbanned,
    MessageEdited,
    MessagePinned,
    MessagePosted,
    MessageRetracted,
    MessageUnpinned,
    ReactionChanged,
    RoomArchived,
    RoomCreated,
    RoomUpdated,
)
from actors.rooms.pins import apply_pin
from actors.rooms.reactions import stored_reaction
from actors.rooms.touches import TouchIndex
from actors.rooms.unread import UnreadIndex
from actors.users.events import UserDeleted


@attrs.define
class MessageView:
    id: str
    room_id: str
    author_id: str
    seq: int
    at_ms: int
    body: str  # sealed; "" once retracted
    body_event_id: str
    epoch: int
    in_reply_to: str = ""
    thread_root: str = ""
    echo: bool = False
    edited_ms: int = 0
    retracted: bool = False
    reactions: dict[str, list[str]] = attrs.Factory(dict)
    reply_count: int = 0
    attachments: tuple[str, ...] = ()


@attrs.define
class AttachmentView:
    id: str
    room_id: str
    author_id: str
    name_enc: str
    content_type: str
    size: int
    epoch: int
    removed: bool = False


@attrs.define
class Timeline:
    seqs: list[int] = attrs.Factory(list)
    ids: list[str] = attrs.Factory(list)

    def add(self, seq: int, event_id: str) -> None:
        i = bisect.bisect(self.seqs, seq)
        self.seqs.insert(i, seq)
        self.ids.insert(i, event_id)


@attrs.define
class RoomView:
    id: str
    name: str
    topic: str
    kind: str
    created_by: str
    created_ms: int
    group_id: str = ""
    read_only: bool = False
    archived: bool = False
    participants: tuple[str, ...] = ()
    members: set[str] = attrs.Factory(set)
    bans: dict[str, int] = attrs.Factory(dict)
    timeline: Timeline = attrs.Factory(Timeline)
    threads: dict[str, Timeline] = attrs.Factory(dict)
    # Derived from the timeline and messages (not in snapshots): unread counts.
    unread: UnreadIndex = attrs.Factory(UnreadIndex)
    # Who banned, why and when: user -> (by, reason, at_ms); keys as in bans.
    ban_details: dict[str, tuple[str, str, int]] = attrs.Factory(dict)
    # Pinned message ids, oldest pin first (actors/rooms/pins.py).
    pins: list[str] = attrs.Factory(list)
    # For reading old pages back from the stream (chatto/messaging/cold.py):
    # every edit/reaction/retraction by target seq, and retracted messages
    # (their stored post is erased) by seq.
    touches: TouchIndex = attrs.Factory(TouchIndex)
    tombstones: dict[int, MessageView] = attrs.Factory(dict)


@attrs.define
class GroupView:
    id: str
    name: str


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
    snapshot_schema = 4

    def __init__(self, cold_pages: int = 256) -> None:
        self.cold_pages = PageCache(cold_pages)
        self.rooms: dict[str, RoomView] = {}
        self.messages: dict[str, MessageView] = {}
        self.by_member: dict[str, set[str]] = {}
        self.groups: dict[str, GroupView] = {}
        self.attachments: dict[str, AttachmentView] = {}

    def export_state(self) -> dict[str, Any]:
        """Rooms, messages (rows in field order), groups, attachments, member index."""
        return {
            "rooms": {i: _room_row(r) for i, r in self.rooms.items()},
            "messages": {i: _message_row(m) for i, m in self.messages.items()},
            "by_member": {u: sorted(r) for u, r in self.by_member.items()},
            "groups": {i: g.name for i, g in self.groups.items()},
            "attachments": {i: list(attrs.astuple(a)) for i, a in self.attachments.items()},
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        self.messages = {m.id: m for m in map(_message, state["messages"].values())}
        for m in self.messages.values():  # one string object per id, as live
            m.thread_root, m.in_reply_to = (
                self._same_id(m.thread_root),
                self._same_id(m.in_reply_to),
            )
        self.rooms = {i: _room(row, self.messages) for i, row in state["rooms"].items()}
        for room in self.rooms.values():
            rows = (self.messages[i] for i in room.timeline.ids)
            room.unread = UnreadIndex.rebuild((m.seq, m.author_id, m.retracted) for m in rows)
        self.by_member = {u: set(r) for u, r in state["by_member"].items()}
        self.groups = {i: GroupView(i, name) for i, name in state["groups"].items()}
        self.attachments = {i: AttachmentView(*row) for i, row in state["attachments"].items()}

    def rooms_touched_by(self, user_id: str) -> set[str]:
        """Rooms the user is in or has written in (account deletion)."""
        rooms = self.rooms_of(user_id)
        rooms.update(m.room_id for m in self.messages.values() if m.author_id == user_id)
        rooms.update(r.id for r in self.rooms.values() if user_id in r.participants)
        return rooms

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
            ev = rec.envelope.event
            gid = rec.envelope.entity.id
            if isinstance(ev, GroupCreated):
                self.groups[gid] = GroupView(gid, ev.name)
            elif isinstance(ev, GroupRenamed) and gid in self.groups:
                self.groups[gid].name = ev.name
            elif isinstance(ev, GroupDeleted):
                # Its rooms become ungrouped (and leave the group's permission scope).
                self.groups.pop(gid, None)
                for grouped in self.rooms.values():
                    if grouped.group_id == gid:
                        grouped.group_id = ""
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
            for att in self.attachments.values():
                if att.author_id == ev.user_id and att.room_id == room.id:
                    att.removed = True
        else:
            self._apply_message(room, rec)

    def _same_id(self, message_id: str) -> str:
        known = self.messages.get(message_id) if message_id else None
        return known.id if known is not None else message_id

    def _apply_message(self, room: RoomView, rec: Recorded) -> None:
        ev, env = rec.envelope.event, rec.envelope
        if isinstance(ev, AttachmentUploaded):
            self.attachments[ev.attachment_id] = AttachmentView(
                ev.attachment_id,
                room.id,
                ev.author_id,
                ev.name_enc,
                ev.content_type,
                ev.size,
                ev.epoch,
            )
            return
        if isinstance(ev, MessagePosted):
            # Shared strings (room, author, the ids a reply names): one
            # object each instead of one per message.
            posted = MessageView(
                env.id,
                room.id,
                sys.intern(ev.author_id),
                rec.seq,
                env.at_ms,
                ev.body,
                env.id,
                ev.epoch,
                self._same_id(ev.in_reply_to),
                self._same_id(ev.thread_root),
                ev.echo,
                attachments=ev.attachments,
            )
            self.messages[env.id] = posted
            if ev.thread_root:
                room.threads.setdefault(ev.thread_root, Timeline()).add(rec.seq, env.id)
                root = self.messages.get(ev.thread_root)
                if root is not None:
                    root.reply_count += 1
                    self.cold_pages.forget(room.id, root.seq)
            if not ev.thread_root or ev.echo:
                room.timeline.add(rec.seq, env.id)
                room.unread.posted(ev.author_id, rec.seq)
            return
        # Before the lookup: on replay a retracted message's post is erased
        # from the stream, but its pin (and the retraction) are not.
        apply_pin(room.pins, ev)
        msg = self.messages.get(getattr(ev, "target_id", ""))
        if msg is None:
            return
        if isinstance(ev, MessageEdited | MessageRetracted | ReactionChanged):
            room.touches.add(msg.seq, rec.seq)
            self.cold_pages.forget(room.id, msg.seq)
        if isinstance(ev, MessageEdited):
            if not msg.retracted:
                msg.body, msg.body_event_id, msg.epoch = ev.body, env.id, ev.epoch
                msg.edited_ms = env.at_ms
        elif isinstance(ev, MessageRetracted):
            if not msg.retracted and (not msg.thread_root or msg.echo):
                room.unread.retract(msg.author_id, msg.seq)
            msg.retracted, msg.body, msg.reactions = True, "", {}
            room.tombstones[msg.seq] = msg
            for att in msg.attachments:
                if att in self.attachments:
                    self.attachments[att].removed = True
        elif isinstance(ev, ReactionChanged):
            key = stored_reaction(ev.shortcode)
            users = msg.reactions.setdefault(key, [])
            if ev.added and ev.user_id not in users:
                users.append(sys.intern(ev.user_id))
            elif not ev.added and ev.user_id in users:
                users.remove(ev.user_id)
            if not users:
                del msg.reactions[key]


# --- snapshot rows ---------------------------------------------------------------
_MESSAGE_FIELDS = [f.name for f in attrs.fields(MessageView)]
_ROOM_SCALARS = [f.name for f in attrs.fields(RoomView)][:10]  # through participants


def _message_row(m: MessageView) -> list[Any]:
    row = [getattr(m, name) for name in _MESSAGE_FIELDS]
    row[-3] = {code: list(users) for code, users in m.reactions.items()}
    row[-1] = list(m.attachments)
    return row


def _message(row: list[Any]) -> MessageView:
    m = MessageView(*row)
    m.attachments = tuple(m.attachments)
    m.room_id, m.author_id = sys.intern(m.room_id), sys.intern(m.author_id)
    if m.body_event_id == m.id:
        m.body_event_id = m.id
    m.reactions = {k: [sys.intern(u) for u in users] for k, users in m.reactions.items()}
    return m


def _timeline(row: list[Any], messages: dict[str, MessageView]) -> Timeline:
    seqs, ids = row
    return Timeline(seqs, [m.id if (m := messages.get(i)) is not None else i for i in ids])


def _room_row(r: RoomView) -> list[Any]:
    row: list[Any] = [getattr(r, name) for name in _ROOM_SCALARS]
    row[-1] = list(r.participants)
    threads = {root: [list(t.seqs), list(t.ids)] for root, t in r.threads.items()}
    timeline = [list(r.timeline.seqs), list(r.timeline.ids)]
    details = {u: list(d) for u, d in r.ban_details.items()}
    members, pins = sorted(r.members), list(r.pins)
    tombs = {str(seq): m.id for seq, m in r.tombstones.items()}
    extra = [r.touches.export(), tombs]
    return [*row, members, dict(r.bans), details, pins, timeline, threads, *extra]


def _room(row: list[Any], messages: dict[str, MessageView]) -> RoomView:
    *scalars, members, bans, details, pins, timeline, threads, touches, tombs = row
    scalars[-1] = tuple(scalars[-1])  # participants
    room = RoomView(*scalars)
    room.members, room.bans = set(members), dict(bans)
    room.ban_details = {u: (str(b), str(r), int(t)) for u, (b, r, t) in details.items()}
    room.pins = list(pins)
    room.timeline = _timeline(timeline, messages)
    room.threads = {root: _timeline(t, messages) for root, t in threads.items()}
    room.touches = TouchIndex.restore(touches)
    room.tombstones = {int(seq): messages[mid] for seq, mid in tombs.items()}
    return room
