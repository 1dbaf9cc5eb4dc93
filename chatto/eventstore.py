"""The event store and event feed on JetStream (implements ``actors.store``).

Appends use ``Nats-Expected-Last-Subject-Sequence`` with the entity's
wildcard subject, so optimistic concurrency is per entity while every event
type keeps its own subject. ``Nats-Msg-Id`` is the event id, so a retried
publish inside the dedupe window is stored once.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Sequence

from actors.events import EntityRef, Envelope, Recorded
from chatto.bus.bridge import MAX_ATOMIC_BATCH, NatsBridge, StoredMsg
from chatto.bus.storage import EVENT_STREAM, EVENT_SUBJECTS
from chatto.codec import CodecError, decode_envelope, encode_envelope, entity_filter, subject_for

log = logging.getLogger(__name__)


def _recorded(msg: StoredMsg) -> Recorded:
    return Recorded(seq=msg.seq, envelope=decode_envelope(msg.data))


def _decode_batch(batch: list[StoredMsg]) -> list[Recorded]:
    """Decode a batch, skipping (and logging) events that cannot be decoded."""
    out = []
    for m in batch:
        try:
            out.append(_recorded(m))
        except CodecError as exc:
            log.error("skipping undecodable event at seq %d: %s", m.seq, exc.message)
    return out


class JetStreamEventStore:
    """``EventStore`` and ``EventFeed`` over the ``EVT`` stream."""

    def __init__(self, bridge: NatsBridge, read_ahead: int = 4096) -> None:
        self._bridge = bridge
        # Events the feed's reader holds at most before the projector takes them.
        self._read_ahead = read_ahead

    async def append(self, envelopes: Sequence[Envelope], expected_seq: int) -> list[int]:
        """Append conditionally: ``StaleWriteError`` if the entity moved past ``expected_seq``.

        Several events of one decision (a registration, a purge) go in one
        atomic batch when the stream allows it, so a crash or an outage
        cannot leave half of them stored; one event is a plain publish.
        """
        if 1 < len(envelopes) <= MAX_ATOMIC_BATCH and self._bridge.atomic_batches:
            return await self._bridge.publish_batch(
                [(subject_for(env), encode_envelope(env)) for env in envelopes],
                expect_last_seq=expected_seq,
                expect_subject=entity_filter(envelopes[0].entity),
            )
        seqs: list[int] = []
        expected = expected_seq
        for env in envelopes:
            seq = await self._bridge.publish(
                subject_for(env),
                encode_envelope(env),
                msg_id=env.id,
                expect_last_seq=expected,
                expect_subject=entity_filter(env.entity),
            )
            seqs.append(seq)
            expected = seq
        return seqs

    async def load(self, entity: EntityRef, after_seq: int = 0) -> list[Recorded]:
        subject = entity_filter(entity)
        upto = await self._bridge.last_seq(EVENT_STREAM, subject)
        out: list[Recorded] = []
        async for batch in self._bridge.read_range(EVENT_STREAM, subject, after_seq, upto):
            out.extend(_decode_batch(batch))
        return out

    async def last_seq(self, entity: EntityRef) -> int:
        return await self._bridge.last_seq(EVENT_STREAM, entity_filter(entity))

    async def get(self, entity: EntityRef, seqs: Sequence[int]) -> list[Recorded | None]:
        prefix = entity_filter(entity)[:-1]  # "evt.<kind>.<id>."
        out: list[Recorded | None] = []
        for msg in await self._bridge.get_msgs(EVENT_STREAM, seqs):
            found = None
            if msg is not None and msg.subject.startswith(prefix):
                found = next(iter(_decode_batch([msg])), None)
            out.append(found)
        return out

    async def head(self) -> int:
        return await self._bridge.stream_last_seq(EVENT_STREAM)

    async def follow(self, after_seq: int) -> AsyncGenerator[list[Recorded], None]:
        async with self._bridge.ordered_reader(
            EVENT_STREAM, EVENT_SUBJECTS, after_seq + 1, self._read_ahead
        ) as next_batch:
            while True:
                batch = await next_batch(1024)
                yield _decode_batch(batch)
