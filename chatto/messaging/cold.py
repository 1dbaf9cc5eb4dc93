"""The cold path: message views rebuilt from the event stream (issue #22).

Given a room and the stream sequences of a page (from the room's compact
timeline index), ``ColdReader.views`` reads the page's posts and every later
edit, reaction and retraction aimed at them (the room's ``TouchIndex``) by
sequence through the bridge, and folds them in stream order with the rooms
read model's own rules (``fold_page``), so a page read back equals the page
the live model holds, field for field. A root's ``reply_count`` is its
thread index's length; a retracted message, whose post the retraction
erased, is the model's tombstone while in the hot window, absent after.
Pages go into the read model's bounded ``PageCache``, which the projector
empties as events change or erase them. ``ColdReader.message`` is the one
look-up of a message by id for every reader: the hot window first, else the
room's id index and the stream (the stored event's id is checked, so a hash
collision in the index reads as "no such message").

Bodies stay sealed: a cold view is exactly what a hot one is, opened only
per request by ``Message.body``.
"""

from __future__ import annotations

import logging

from actors.events import Recorded
from actors.ids import id_timestamp_ms
from actors.rooms.directory import MessageView, RoomDirectory
from actors.rooms.fold import fold_page
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM
from chatto.codec import CodecError, decode_envelope
from chatto.errors import NotFoundError

log = logging.getLogger(__name__)


class ColdReader:
    """Reads pages of a room's history back from ``EVT``."""

    def __init__(self, bridge: NatsBridge, rooms: RoomDirectory) -> None:
        self._bridge = bridge
        self._rooms = rooms
        self.reads = 0  # stream look-ups made (statistics)

    async def message(self, room_id: str, message_id: str) -> MessageView | None:
        """The room's message ``message_id`` (a retracted one only while in the hot window)."""
        view = self._rooms.view(room_id, message_id)
        if view is not None:
            return view
        await self._rooms.ensure(room_id)
        facts = self._rooms.facts(room_id, message_id)
        if facts is None or facts.retracted:
            return None
        views = await self.views(room_id, [facts.seq])
        return views[0] if views and views[0].id == message_id else None

    async def tombstone(self, room_id: str, message_id: str) -> MessageView | None:
        """What a live MESSAGE_RETRACTED names when the message was outside the
        window: its post is erased, so only the columns' facts (its time from
        the id) and the flag. Clients holding it drop its body and reactions."""
        await self._rooms.ensure(room_id)
        facts = self._rooms.facts(room_id, message_id)
        if facts is None or not facts.retracted:
            return None
        try:
            at_ms = id_timestamp_ms(message_id)
        except ValueError:
            at_ms = 0
        return MessageView(
            message_id,
            room_id,
            facts.author_id,
            facts.seq,
            at_ms,
            "",
            message_id,
            0,
            thread_root=facts.thread_root,
            echo=facts.echo,
            retracted=True,
        )

    async def views(self, room_id: str, seqs: list[int]) -> list[MessageView]:
        """The messages at ``seqs`` (ascending) of the room, as the read model shows them."""
        if not seqs:
            return []
        room = self._rooms.rooms.get(room_id)
        if room is None:
            raise NotFoundError("no such room")
        cache = self._rooms.cold_pages
        key = (room_id, seqs[0], seqs[-1], len(seqs))
        cached = cache.get(key)
        if cached is not None:
            return cached
        generation = cache.generation(room_id)
        wanted = set(seqs)
        await self._rooms.ensure(room_id)
        touches = [e for t, e in room.touches.between(seqs[0], seqs[-1]) if t in wanted]
        stored = await self._bridge.get_msgs(EVENT_STREAM, [*seqs, *touches])
        self.reads += len(stored)
        prefix = f"evt.room.{room_id}."
        records = []
        for msg in stored:
            if msg is None or not msg.subject.startswith(prefix):
                continue  # erased by a retraction (its tombstone stands in)
            try:
                records.append(Recorded(msg.seq, decode_envelope(msg.data)))
            except CodecError as exc:
                log.error("skipping undecodable event at seq %d: %s", msg.seq, exc.message)
        records.sort(key=lambda rec: rec.seq)
        # The room may have moved on while we read: fold against its state now.
        room = self._rooms.rooms.get(room_id)
        if room is None:
            raise NotFoundError("no such room")
        await self._rooms.ensure(room_id)
        views = fold_page(room, seqs, records)
        cache.put(key, views, generation)
        return views
