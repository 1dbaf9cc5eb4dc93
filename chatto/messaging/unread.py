"""Read markers and unread counts for the API layer.

A marker is ``read.<user>.<room>[.<thread>]`` in RUNTIME_STATE, holding the
event id and its stream sequence; counts come from the sequence and the
room's ``UnreadIndex`` in the read model (``actors/rooms/unread.py``), never from
bodies. Setting a marker tells every open client of that user, in every
process, through the live relay (``READ_MARKER`` on ``myEvents``).
Mention counts come from the notification read model's ``MentionIndex``
(``actors/notifications/mentions.py``), also without a body.
"""

from __future__ import annotations

import json

import attrs

from actors.notifications.feed import NotificationFeed
from actors.rooms.directory import RoomDirectory, RoomView
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import RUNTIME_STATE
from chatto.concurrency import for_each_bounded
from chatto.errors import NotFoundError
from chatto.messaging.live import LiveRelay

MARKER_READS = 16


@attrs.frozen
class Marker:
    event_id: str
    seq: int


@attrs.frozen
class Unread:
    """One room's unread state for one viewer."""

    count: int
    mentions: int = 0


def marker_key(user_id: str, room_id: str, thread_root: str) -> str:
    return f"read.{user_id}.{room_id}" + (f".{thread_root}" if thread_root else "")


def count_unread(
    room: RoomView, user_id: str, marker_seq: int, feed: NotificationFeed | None = None
) -> Unread:
    """Unread state from a marker's sequence (0: no marker, everything counts)."""
    count = room.unread.unread(room.timeline.seqs, user_id, marker_seq)
    if not count or feed is None:
        return Unread(count)
    return Unread(count, feed.mention_count(room.id, user_id, marker_seq))


class ReadMarkers:
    """Markers in KV, counts from the read model; callers are already authorised."""

    def __init__(
        self,
        bridge: NatsBridge,
        rooms: RoomDirectory,
        live: LiveRelay,
        feed: NotificationFeed | None = None,
    ) -> None:
        self._bridge = bridge
        self._rooms = rooms
        self._live = live
        self.feed = feed

    def count(self, room: RoomView, user_id: str, marker_seq: int) -> Unread:
        return count_unread(room, user_id, marker_seq, self.feed)

    async def mark(self, user_id: str, room_id: str, event_id: str, thread_root: str) -> None:
        """Move the viewer's marker to ``event_id`` and tell their open clients."""
        await self._rooms.ensure(room_id)
        msg = self._rooms.facts(room_id, event_id)  # hot or cold: the columns
        if msg is None:
            raise NotFoundError("no such message")
        doc = json.dumps({"e": event_id, "s": msg.seq}).encode()
        await self._bridge.kv_put(RUNTIME_STATE, marker_key(user_id, room_id, thread_root), doc)
        await self._live.read_marker(user_id, room_id, event_id, msg.seq, thread_root)

    async def marker(self, user_id: str, room_id: str, thread_root: str = "") -> Marker | None:
        entry = await self._bridge.kv_get(RUNTIME_STATE, marker_key(user_id, room_id, thread_root))
        if entry is None:
            return None
        doc = json.loads(entry.value)
        return Marker(str(doc["e"]), int(doc.get("s", 0)))

    async def unread(self, user_id: str, room: RoomView) -> Unread:
        """The viewer's unread state in a room they are a member of."""
        marker = await self.marker(user_id, room.id)
        await self._rooms.ensure(room.id)
        return self.count(room, user_id, marker.seq if marker else 0)

    async def rooms_with_unread(self, user_id: str) -> list[tuple[RoomView, Unread]]:
        """Every room of the viewer with unread messages, oldest room id first.

        The markers are read ``MARKER_READS`` at a time: one KV round trip
        each, and a user can be in hundreds of rooms.
        """
        rooms = [self._rooms.rooms.get(r) for r in sorted(self._rooms.rooms_of(user_id))]
        # Empty rooms need no marker read.
        wanted = [room for room in rooms if room is not None and room.last_post_seq]
        states: dict[str, Unread] = {}

        async def one(room: RoomView) -> None:
            states[room.id] = await self.unread(user_id, room)

        await for_each_bounded(wanted, one, MARKER_READS)
        return [(room, states[room.id]) for room in wanted if states[room.id].count]
