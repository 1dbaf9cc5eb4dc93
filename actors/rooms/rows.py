"""Snapshot rows of the rooms read model: compact lists in field order."""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

import attrs

from actors.rooms.index import Posts
from actors.rooms.touches import TouchIndex
from actors.rooms.unread import UnreadIndex
from actors.rooms.views import MessageView, RoomView, Timeline

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


def _b64(seqs: array[int]) -> str:
    return base64.b64encode(seqs.tobytes()).decode()


def _timeline(text: str) -> Timeline:
    seqs = array("q")
    seqs.frombytes(base64.b64decode(text))
    return Timeline(seqs)


def room_row(r: RoomView) -> list[Any]:
    """A room's state; sequence arrays as base64 of their bytes (no copy of history)."""
    row: list[Any] = [getattr(r, name) for name in _ROOM_SCALARS]
    row[-1] = list(r.participants)
    threads = {root: _b64(t.seqs) for root, t in r.threads.items()}
    details = {u: list(d) for u, d in r.ban_details.items()}
    members, pins = sorted(r.members), list(r.pins)
    tombs = {str(seq): m.id for seq, m in r.tombstones.items()}
    attached = {str(seq): list(a) for seq, a in r.attached.items()}
    extra = [r.touches.export(), tombs, r.posts.export(), r.unread.export(), attached]
    return [*row, members, dict(r.bans), details, pins, _b64(r.timeline.seqs), threads, *extra]


def room_from_row(row: list[Any], messages: dict[str, MessageView]) -> RoomView:
    """The room, its hot window made of ``messages`` (views of every room)."""
    scalars, rest = row[: len(_ROOM_SCALARS)], row[len(_ROOM_SCALARS) :]
    members, bans, details, pins, timeline, threads, touches, tombs, *extra = rest
    posts, unread, attached = extra
    scalars[-1] = tuple(scalars[-1])  # participants
    room = RoomView(*scalars)
    room.members, room.bans = set(members), dict(bans)
    room.ban_details = {u: (str(b), str(r), int(t)) for u, (b, r, t) in details.items()}
    room.pins = list(pins)
    room.timeline = _timeline(timeline)
    room.threads = {sys.intern(root): _timeline(t) for root, t in threads.items()}
    room.touches = TouchIndex.restore(touches)
    room.tombstones = {int(seq): messages[mid] for seq, mid in tombs.items()}
    room.posts = Posts.restore(posts)
    room.unread = UnreadIndex.restore(unread)
    room.attached = {int(seq): tuple(a) for seq, a in attached.items()}
    return room
