"""History pages over the rooms read model: cursors, limits, pages.

Cursors are opaque encodings of a stream sequence, so a page boundary stays
valid whatever is posted, edited or retracted meanwhile. This module is the
one place that turns (room, cursor, limit) into message views, so the
bounded read models of issue #22 (hot window in memory, older pages read
from the stream) change only here (see docs/ARCHITECTURE.md, "Bounded read
models").
"""

from __future__ import annotations

import base64
import bisect

import attrs

from actors.rooms.directory import MessageView, RoomDirectory, Timeline
from chatto.errors import InvalidInputError, NotFoundError

DEFAULT_PAGE = 50
MAX_PAGE = 500


@attrs.frozen
class Page:
    events: list[MessageView]
    has_older: bool
    has_newer: bool


def encode_cursor(seq: int) -> str:
    return base64.urlsafe_b64encode(f"s:{seq}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        kind, _, value = raw.partition(":")
        if kind != "s":
            raise ValueError
        return int(value)
    except ValueError:
        raise InvalidInputError("invalid cursor") from None


def clamp_limit(limit: int | None) -> int:
    if limit is None:
        return DEFAULT_PAGE
    if limit < 1:
        raise InvalidInputError("limit must be at least 1")
    return min(limit, MAX_PAGE)


class History:
    """Pages of a room's main timeline or of one thread."""

    def __init__(self, rooms: RoomDirectory) -> None:
        self.rooms = rooms

    def _views(self, line: Timeline, start: int, end: int) -> list[MessageView]:
        return [self.rooms.messages[i] for i in line.ids[start:end]]

    def page(
        self,
        room_id: str,
        before: str | None,
        after: str | None,
        limit: int | None,
        thread_root: str = "",
    ) -> Page:
        room = self.rooms.rooms.get(room_id)
        if room is None:
            raise NotFoundError("no such room")
        line = room.threads.get(thread_root) if thread_root else room.timeline
        n = clamp_limit(limit)
        if line is None:
            return Page([], False, False)
        if after is not None:
            start = bisect.bisect_right(line.seqs, decode_cursor(after))
            end = min(len(line.seqs), start + n)
        else:
            end = bisect.bisect_left(line.seqs, decode_cursor(before)) if before else len(line.seqs)
            start = max(0, end - n)
        return Page(self._views(line, start, end), start > 0, end < len(line.seqs))

    def around(self, msg: MessageView, limit: int | None) -> Page:
        """The page centred on ``msg`` (in its thread if it is a non-echoed reply)."""
        room = self.rooms.rooms[msg.room_id]
        threaded = msg.thread_root and not msg.echo
        line = room.threads[msg.thread_root] if threaded else room.timeline
        n = clamp_limit(limit)
        i = bisect.bisect_left(line.seqs, msg.seq)
        start = max(0, i - n // 2)
        end = min(len(line.seqs), start + n)
        return Page(self._views(line, start, end), start > 0, end < len(line.seqs))
