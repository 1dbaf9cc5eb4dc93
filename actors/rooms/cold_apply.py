"""Rooms read model rules kept apart from ``directory.py``: changes aimed at
messages outside the hot window (their facts come from the compact columns),
and groups."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from actors.events import Recorded
from actors.groups import GroupDeleted, GroupRenamed
from actors.rooms.events import GroupCreated, MessageEdited, MessageRetracted, ReactionChanged
from actors.rooms.hot import drop_retracted
from actors.rooms.views import GroupView, RoomView

if TYPE_CHECKING:
    from actors.rooms.directory import RoomDirectory


def apply_cold(rooms: RoomDirectory, room: RoomView, rec: Recorded) -> None:
    """An edit, reaction or retraction aimed at a message outside the window."""
    ev = rec.envelope.event
    if not isinstance(ev, MessageEdited | MessageRetracted | ReactionChanged):
        return
    facts = rooms.facts(room.id, ev.target_id)
    if facts is None or facts.retracted:
        return
    rooms.cold_pages.forget(room.id, facts.seq)
    if not isinstance(ev, MessageRetracted):
        room.touches.add(facts.seq, rec.seq)
        return
    room.posts.retract(room.posts.find(ev.target_id))
    main = not facts.thread_root or facts.echo
    if main:
        room.unread.retract(facts.author_id, facts.seq, dropped=True)
    drop_retracted(room, facts.seq, facts.thread_root, main, tombstone=False)
    root = rooms.messages.get(facts.thread_root) if facts.thread_root else None
    if root is not None:
        root.reply_count -= 1
    room.remove_attachments(room.attached.pop(facts.seq, ()))
    rooms.cold_pages.forget_room(room.id)


def apply_group(groups: dict[str, GroupView], rooms: Iterable[RoomView], rec: Recorded) -> None:
    """A group event."""
    ev = rec.envelope.event
    gid = rec.envelope.entity.id
    if isinstance(ev, GroupCreated):
        groups[gid] = GroupView(gid, ev.name)
    elif isinstance(ev, GroupRenamed) and gid in groups:
        groups[gid].name = ev.name
    elif isinstance(ev, GroupDeleted):
        # Its rooms become ungrouped (and leave the group's permission scope).
        groups.pop(gid, None)
        for grouped in rooms:
            if grouped.group_id == gid:
                grouped.group_id = ""
