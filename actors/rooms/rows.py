"""Snapshot rows of the rooms read model: compact lists in field order."""

from __future__ import annotations

import sys
from typing import Any

import attrs

from actors.rooms.index import Posts
from actors.rooms.touches import TouchIndex
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


def _timeline(row: list[Any], messages: dict[str, MessageView]) -> Timeline:
    seqs, ids = row
    return Timeline(seqs, [m.id if (m := messages.get(i)) is not None else i for i in ids])


def room_row(r: RoomView) -> list[Any]:
    row: list[Any] = [getattr(r, name) for name in _ROOM_SCALARS]
    row[-1] = list(r.participants)
    threads = {root: [list(t.seqs), list(t.ids)] for root, t in r.threads.items()}
    timeline = [list(r.timeline.seqs), list(r.timeline.ids)]
    details = {u: list(d) for u, d in r.ban_details.items()}
    members, pins = sorted(r.members), list(r.pins)
    tombs = {str(seq): m.id for seq, m in r.tombstones.items()}
    extra = [r.touches.export(), tombs, r.posts.export()]
    return [*row, members, dict(r.bans), details, pins, timeline, threads, *extra]


def room_from_row(row: list[Any], messages: dict[str, MessageView]) -> RoomView:
    *scalars, members, bans, details, pins, timeline, threads, touches, tombs, posts = row
    scalars[-1] = tuple(scalars[-1])  # participants
    room = RoomView(*scalars)
    room.members, room.bans = set(members), dict(bans)
    room.ban_details = {u: (str(b), str(r), int(t)) for u, (b, r, t) in details.items()}
    room.pins = list(pins)
    room.timeline = _timeline(timeline, messages)
    room.threads = {root: _timeline(t, messages) for root, t in threads.items()}
    room.touches = TouchIndex.restore(touches)
    room.tombstones = {int(seq): messages[mid] for seq, mid in tombs.items()}
    room.posts = Posts.restore(posts)
    return room
