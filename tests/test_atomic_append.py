"""Several events of one decision are stored all together or not at all.

A registration appends a key event, the user, the password and perhaps the
owner role; a purge appends many retractions. Sent one by one, a crash or a
NATS failure between two of them left half a decision in the log (a user
without a password). JetStream atomic batches (nats-server 2.12+) store them
in one step; these tests attack that against a real nats-server.
"""

from __future__ import annotations

import pytest
import trio
from nats.js.api import StreamConfig

from actors.events import EntityRef, Envelope, ServerProfileChanged
from actors.ids import new_id
from chatto.bus.bridge import MAX_ATOMIC_BATCH, NatsBridge
from chatto.bus.storage import EVENT_STREAM, bootstrap_storage
from chatto.errors import StaleWriteError, UnavailableError
from chatto.eventstore import JetStreamEventStore


def envelopes(entity: EntityRef, n: int) -> list[Envelope]:
    return [Envelope(new_id(), entity, 0, ServerProfileChanged(f"name {i}")) for i in range(n)]


async def test_bootstrap_enables_atomic_batches(bridge: NatsBridge) -> None:
    js = bridge.js
    info = await bridge.call(lambda: js.stream_info(EVENT_STREAM))
    assert info.config.allow_atomic and bridge.atomic_batches


async def test_a_stream_created_without_atomic_batches_gets_them(bridge: NatsBridge) -> None:
    """The upgrade path: an event stream made by an older Chatto."""
    js = bridge.js
    with trio.fail_after(10):
        await bridge.call(lambda: js.delete_stream(EVENT_STREAM))
        await bridge.call(
            lambda: js.add_stream(StreamConfig(name=EVENT_STREAM, subjects=["evt.>"]))
        )
        bridge.atomic_batches = False
        await bootstrap_storage(bridge)
        info = await bridge.call(lambda: js.stream_info(EVENT_STREAM))
        assert info.config.allow_atomic and bridge.atomic_batches


async def test_batch_is_contiguous_and_conditional(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        msgs = [(f"evt.t.b.m{i}", str(i).encode()) for i in range(5)]
        seqs = await bridge.publish_batch(msgs, expect_last_seq=0, expect_subject="evt.t.b.>")
        assert len(seqs) == 5 and seqs == list(range(seqs[0], seqs[0] + 5))
        got = []
        async for batch in bridge.read_range(EVENT_STREAM, "evt.t.b.>", 0, seqs[-1]):
            got.extend((m.seq, m.subject, m.data) for m in batch)
        assert got == [(s, subj, data) for s, (subj, data) in zip(seqs, msgs, strict=True)]
        head = await bridge.stream_last_seq(EVENT_STREAM)
        # A stale condition stores none of the batch.
        with pytest.raises(StaleWriteError):
            await bridge.publish_batch(msgs, expect_last_seq=seqs[0], expect_subject="evt.t.b.>")
        assert await bridge.stream_last_seq(EVENT_STREAM) == head
        with pytest.raises(ValueError):
            await bridge.publish_batch([("evt.t.b.x", b"")] * (MAX_ATOMIC_BATCH + 1))


async def test_a_batch_missing_a_message_stores_nothing(bridge: NatsBridge) -> None:
    """The middle message goes nowhere: sent one by one, the first would be stored."""
    with trio.fail_after(10):
        head = await bridge.stream_last_seq(EVENT_STREAM)
        msgs = [("evt.t.gap.a", b"1"), ("nowhere.at.all", b"2"), ("evt.t.gap.c", b"3")]
        with pytest.raises(UnavailableError, match="incomplete"):
            await bridge.publish_batch(msgs)
        assert await bridge.stream_last_seq(EVENT_STREAM) == head
        assert await bridge.last_seq(EVENT_STREAM, "evt.t.gap.>") == 0


async def test_event_store_appends_a_decision_atomically(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    entity = EntityRef("server", "atomic")
    with trio.fail_after(10):
        first = envelopes(entity, 3)
        seqs = await store.append(first, 0)
        assert seqs == list(range(seqs[0], seqs[0] + 3))
        loaded = await store.load(entity)
        assert [r.envelope.id for r in loaded] == [e.id for e in first]
        assert [r.seq for r in loaded] == seqs
        # A writer that did not see those three: nothing of its decision lands.
        with pytest.raises(StaleWriteError):
            await store.append(envelopes(entity, 4), 0)
        assert [r.seq for r in await store.load(entity)] == seqs
        # Without atomic batches (an older nats-server) it still appends, one by one.
        bridge.atomic_batches = False
        more = await store.append(envelopes(entity, 2), seqs[-1])
        assert len(more) == 2 and more[0] > seqs[-1]
