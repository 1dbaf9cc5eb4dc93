"""Snapshot rows of the rooms read model: compact lists in field order."""

from __future__ import annotations

import sys
from typing import Any

import attrs

from actors.rooms.index import Authors
from actors.rooms.indexrows import index_from_row
from actors.rooms.views import MessageView, RoomView

_MESSAGE_FIELDS = [f.name for f in attrs.fields(MessageView)]
_ROOM_SCALARS = [f.name for f in attrs.fields(RoomView)][:10]  # through participants


def message_row(m: MessageView) -> list[Any]:
    row = [getattr(m, name) for name in _MESSAGE_FIELDS]
    row[-3] = {code: list(users) for code, users in m.reactions.items()}
    row[-1] = list(m.attachments)
    return row


def message_from_row(row: list[Any]) -> MessageView:
    m = MessageView(*row)
    m.attachments = tuple(m.attachments)
    m.room_id, m.author_id = sys.intern(m.room_id), sys.intern(m.author_id)
    if m.body_event_id == m.id:
        m.body_event_id = m.id
    m.reactions = {k: [sys.intern(u) for u in users] for k, users in m.reactions.items()}
    return m


def room_row(r: RoomView, index: dict[str, Any]) -> list[Any]:
    """A room's metadata, hot-window tombstones and ``index``: ``{"ref": object
    name}`` or ``{"inline": index row}`` (``actors/rooms/resident.py``)."""
    row: list[Any] = [getattr(r, name) for name in _ROOM_SCALARS]
    row[-1] = list(r.participants)
    details = {u: list(d) for u, d in r.ban_details.items()}
    members, pins = sorted(r.members), list(r.pins)
    tombs = {str(seq): m.id for seq, m in r.tombstones.items()}
    pending = [list(p) for p in r.pending]
    extra = [tombs, pending, sorted(r.authors), r.last_post_seq, index]
    return [*row, members, dict(r.bans), details, pins, *extra]


def room_from_row(row: list[Any], messages: dict[str, MessageView], authors: Authors) -> RoomView:
    """The room, its hot window made of ``messages`` (views of every room); its
    index resident if inline, else only referenced (``index_ref``)."""
    scalars, rest = row[: len(_ROOM_SCALARS)], row[len(_ROOM_SCALARS) :]
    members, bans, details, pins, tombs, pending, posters, last_post_seq, index = rest
    scalars[-1] = tuple(scalars[-1])  # participants
    room = RoomView(*scalars)
    room.members, room.bans = set(members), dict(bans)
    room.ban_details = {u: (str(b), str(r), int(t)) for u, (b, r, t) in details.items()}
    room.pins = list(pins)
    room.tombstones = {int(seq): messages[mid] for seq, mid in tombs.items()}
    room.pending = [(int(s), sys.intern(str(t)), bool(m), bool(b)) for s, t, m, b in pending]
    room.authors, room.last_post_seq = {int(a) for a in posters}, int(last_post_seq)
    if "inline" in index:
        room.resident = index_from_row(index["inline"], authors, room.id)
    else:
        room.resident, room.index_ref = None, str(index["ref"])
    return room
