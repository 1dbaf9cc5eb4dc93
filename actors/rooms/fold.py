"""Message views rebuilt from stored events, by the rooms read model's own rules.

The cold path (``chatto/messaging/cold.py``) reads an old page's posts and
the later events that changed them back from the stream; folding them here,
through ``RoomDirectory``'s own apply code on a scratch room, is what keeps
a page read back equal to the live one, field for field.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from actors.events import Recorded
from actors.rooms.directory import MessageView, RoomDirectory, RoomView


def fold_page(room: RoomView, seqs: list[int], records: Iterable[Recorded]) -> list[MessageView]:
    """Views of ``room``'s messages at ``seqs`` rebuilt from their stored events.

    ``records`` (stream order) hold the posts and every later change aimed
    at them; they are applied by this model's own rules to a scratch room,
    so a view read back from the stream equals the live one. Reply counts
    come from the room's thread index; a post the stream no longer holds
    (erased by its retraction) is the room's tombstone while that is in the
    hot window, and absent after (as on a replay).
    """
    scratch = RoomDirectory(cold_pages=0, hot_messages=0, hot_rooms=0)
    blank = RoomView(room.id, room.name, room.topic, room.kind, room.created_by, room.created_ms)
    scratch.rooms[room.id] = blank
    for rec in records:
        scratch._apply_message(blank, rec)
    by_seq = {m.seq: m for m in scratch.messages.values()}
    out = []
    for seq in seqs:
        view = by_seq.get(seq)
        if view is None:
            tomb = room.tombstones.get(seq)
            if tomb is None:
                continue
            view = attrs.evolve(tomb, reactions={})
        thread = room.threads.get(view.id)
        view.reply_count = len(thread.seqs) if thread is not None else 0
        out.append(view)
    return out
