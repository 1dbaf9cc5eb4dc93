"""History pages over the rooms read model: cursors, limits, pages.

Cursors are opaque encodings of a stream sequence, so a page boundary stays
valid whatever is posted, edited or retracted meanwhile. This module is the
one place that turns (room, cursor, limit) into message views: the hot
window's views from memory, older ones read back from the stream by the
cold path (issue #22; docs/ARCHITECTURE.md, "Bounded read models").
"""

from __future__ import annotations

import base64
import bisect

import attrs

from actors.rooms.directory import MessageView, RoomDirectory, RoomView
from actors.rooms.index import Facts
from chatto.errors import InvalidInputError, NotFoundError
from chatto.messaging.cold import ColdReader

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

    def __init__(self, rooms: RoomDirectory, cold: ColdReader) -> None:
        self.rooms = rooms
        self.cold = cold

    async def views(self, room: RoomView, seqs: list[int]) -> list[MessageView]:
        """The views at ``seqs``: hot ones from memory, the rest from the stream."""
        hot = {s: v for s in seqs if (v := room.hot.get(s)) is not None}
        missing = [s for s in seqs if s not in hot]
        if missing:
            hot.update((v.seq, v) for v in await self.cold.views(room.id, missing))
        return [v for s in seqs if (v := hot.get(s)) is not None]

    async def page(
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
        await self.rooms.ensure(room_id)
        line = room.threads.get(thread_root) if thread_root else room.timeline
        n = clamp_limit(limit)
        if line is None:
            return Page([], False, False)
        seqs = line.seqs
        if after is not None:
            start = bisect.bisect_right(seqs, decode_cursor(after))
            end = min(len(seqs), start + n)
        else:
            end = bisect.bisect_left(seqs, decode_cursor(before)) if before else len(seqs)
            start = max(0, end - n)
        self.rooms.hot.refresh(room_id)
        views = await self.views(room, seqs[start:end].tolist())
        return Page(views, start > 0, end < len(seqs))

    async def around(self, msg: Facts, limit: int | None) -> Page:
        """The page centred on ``msg`` (in its thread if it is a non-echoed reply)."""
        room = self.rooms.rooms[msg.room_id]
        await self.rooms.ensure(room.id)
        threaded = msg.thread_root and not msg.echo
        line = room.threads.get(msg.thread_root) if threaded else room.timeline
        if line is None:
            return Page([], False, False)
        seqs = line.seqs
        n = clamp_limit(limit)
        i = bisect.bisect_left(seqs, msg.seq)
        start = max(0, i - n // 2)
        end = min(len(seqs), start + n)
        views = await self.views(room, seqs[start:end].tolist())
        return Page(views, start > 0, end < len(seqs))
