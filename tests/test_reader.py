"""Stream readers never drop (issue #23): slow readers, lost deliveries, dead servers.

Every test reads a log many times larger than the reader's buffer, slower
than the stream delivers, and checks that each message arrives exactly once
and in order. On the nats-py ordered push consumer these lost messages (its
pending limit overflowed) and hung or left holes.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import pytest
import trio

from actors.events import SERVER, Envelope, ProbeRecorded, Recorded
from actors.hub import Hub
from actors.ids import new_id
from actors.projector import Projector
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.pull import PullReader
from chatto.bus.storage import EVENT_STREAM, RUNTIME_STATE, bootstrap_storage
from chatto.codec import encode_envelope, subject_for
from chatto.eventstore import JetStreamEventStore
from tests.conftest import NatsProc


async def _publish(bridge: NatsBridge, items: list[tuple[str, bytes]]) -> None:
    """Publish with many acks in flight (a big log in a second or two)."""
    js = bridge.js
    for i in range(0, len(items), 500):
        chunk = items[i : i + 500]

        async def flush(chunk: list[tuple[str, bytes]] = chunk) -> None:
            await asyncio.gather(*(js.publish(s, d) for s, d in chunk))

        await bridge.call(flush)


def _probes(first: int, count: int) -> list[tuple[str, bytes]]:
    out = []
    for value in range(first, first + count):
        env = Envelope(new_id(), SERVER, int(time.time() * 1000), ProbeRecorded(value, "x" * 200))
        out.append((subject_for(env), encode_envelope(env)))
    return out


async def test_slow_reader_with_a_small_buffer_gets_every_message_once(
    bridge: NatsBridge,
) -> None:
    with trio.fail_after(60):
        await _publish(bridge, [(f"evt.t.s{i % 5}.a", str(i).encode()) for i in range(4000)])
        seen: list[int] = []
        async with bridge.ordered_reader(EVENT_STREAM, "evt.>", 1, max_buffer=64) as next_batch:
            while len(seen) < 4000:
                batch = await next_batch(7)
                seen.extend(int(m.data) for m in batch)
                if len(seen) % 70 == 0:
                    await trio.sleep(0.002)  # slower than the stream delivers
            # Live traffic while the reader is still slow.
            await _publish(bridge, [("evt.t.live.a", str(i).encode()) for i in range(4000, 5000)])
            while len(seen) < 5000:
                batch = await next_batch(5)
                seen.extend(int(m.data) for m in batch)
                await trio.sleep(0.001)
        assert seen == list(range(5000))


async def test_buffer_is_bounded_by_what_was_asked_for(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        await _publish(bridge, [("evt.t.b.a", b"%d" % i) for i in range(3000)])
        reader = PullReader(bridge.nc, bridge.js, EVENT_STREAM, "evt.>", 1, capacity=100)
        await bridge.call(reader.open)
        got = 0
        try:
            while got < 3000:
                await trio.sleep(0.01)  # let deliveries pile up if they could
                got += len(await bridge.call(lambda: reader.take(10)))
        finally:
            await bridge.call(reader.close)
        assert reader.stats.max_buffered <= 100
        assert reader.stats.delivered == 3000
        assert reader.stats.resets == 0


class LossyReader(PullReader):
    """Loses one delivery on its way in (what a dropped message looks like)."""

    def __init__(self, *args: Any, lose: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lose = lose
        self.seen_data = 0

    async def _on_msg(self, msg: Any) -> None:
        if not msg.headers:
            self.seen_data += 1
            if self.seen_data == self.lose:
                return
        await super()._on_msg(msg)


async def test_a_lost_delivery_is_read_again(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """A delivery lost between the server and the reader shows as a jump in the
    consumer sequence; the reader starts again after its last message: nothing
    skipped, nothing twice, and it says so at ERROR."""
    with trio.fail_after(30):
        await _publish(bridge, [("evt.t.g.a", b"%d" % i) for i in range(1000)])
        reader = LossyReader(bridge.nc, bridge.js, EVENT_STREAM, "evt.>", 1, capacity=50, lose=150)
        await bridge.call(reader.open)
        seen: list[int] = []
        try:
            with caplog.at_level(logging.WARNING):
                while len(seen) < 1000:
                    seen.extend(int(m.data) for m in await bridge.call(lambda: reader.take(10)))
        finally:
            await bridge.call(reader.close)
        assert seen == list(range(1000))
        assert reader.stats.resets == 1
        assert "delivery gap 150 -> 151" in reader.stats.reset_reasons[0]
        assert any("missing" in r.message for r in caplog.records if r.levelname == "ERROR")


async def test_a_deleted_consumer_is_replaced(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        await _publish(bridge, [("evt.t.d.a", b"%d" % i) for i in range(600)])
        seen: list[int] = []
        reader = PullReader(bridge.nc, bridge.js, EVENT_STREAM, "evt.>", 1, capacity=40)
        await bridge.call(reader.open)
        try:
            while len(seen) < 200:
                seen.extend(int(m.data) for m in await bridge.call(lambda: reader.take(10)))
            consumer = reader.current_position()[0]
            js = bridge.js
            await bridge.call(lambda: js.delete_consumer(EVENT_STREAM, consumer))
            while len(seen) < 600:
                seen.extend(int(m.data) for m in await bridge.call(lambda: reader.take(10)))
        finally:
            await bridge.call(reader.close)
        assert seen == list(range(600))
        assert reader.stats.resets >= 1


class SlowModel:
    """A read model many times slower than the stream: it sleeps per batch."""

    def __init__(self) -> None:
        self.values: list[int] = []

    async def prepare(self, batch: list[Recorded]) -> None:
        await trio.sleep(0.005)

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, ProbeRecorded):
            self.values.append(event.value)


async def test_slow_projector_applies_every_event_once_at_start_and_live(
    bridge: NatsBridge,
) -> None:
    with trio.fail_after(90):
        await _publish(bridge, _probes(0, 6000))
        store = JetStreamEventStore(bridge, read_ahead=64)
        model = SlowModel()
        projector = Projector(store, [model], Hub())
        async with trio.open_nursery() as nursery:
            await nursery.start(projector.serve)
            assert model.values == list(range(6000))
            await _publish(bridge, _probes(6000, 3000))
            head = await store.head()
            await projector.wait_for(head, within=60)
            nursery.cancel_scope.cancel()
        assert model.values == list(range(9000))


async def test_nats_killed_during_a_replay(
    nats_server: NatsProc, caplog: pytest.LogCaptureFixture
) -> None:
    """kill -9 of nats-server in the middle of a slow replay: after its restart the
    projector goes on from where it was and applies every event exactly once."""
    with trio.fail_after(120):
        settings = NatsSettings(nats_server.url, token=nats_server.token)
        async with open_nats_bridge(settings) as bridge:
            await bootstrap_storage(bridge)
            await _publish(bridge, _probes(0, 8000))
            store = JetStreamEventStore(bridge, read_ahead=64)
            model = SlowModel()
            projector = Projector(store, [model], Hub())
            async with trio.open_nursery() as nursery:
                nursery.start_soon(projector.serve)
                while len(model.values) < 1500:
                    await trio.sleep(0.01)
                with caplog.at_level(logging.WARNING):
                    nats_server.kill()
                    killed_at = len(model.values)
                    await trio.sleep(0.5)
                    nats_server.start()
                    while not projector.caught_up or len(model.values) < 8000:
                        await trio.sleep(0.05)
                nursery.cancel_scope.cancel()
            assert killed_at < 8000 - 64  # the kill came in the middle of the replay
            assert model.values == list(range(8000))
            # The reader noticed it lost its consumer and re-read from its position.
            assert any("restarts at sequence" in r.message for r in caplog.records)


async def test_kv_keys_reads_every_live_key(bridge: NatsBridge) -> None:
    """``kv_keys`` (used to revoke every session of a user and by backups) reads
    the newest value per key with the same reader: every live key, once."""
    with trio.fail_after(60):
        await _publish(bridge, [(f"$KV.{RUNTIME_STATE}.k.{i}", b"v") for i in range(5000)])
        await _publish(bridge, [(f"$KV.{RUNTIME_STATE}.k.{i}", b"v2") for i in range(0, 5000, 7)])
        for i in range(0, 5000, 50):
            await bridge.kv_delete(RUNTIME_STATE, f"k.{i}")
        keys = [k for k in await bridge.kv_keys(RUNTIME_STATE) if k.startswith("k.")]
        assert len(keys) == len(set(keys))
        assert sorted(keys) == sorted(f"k.{i}" for i in range(5000) if i % 50)
        # A prefix is filtered by the server: only those keys come back.
        await bridge.kv_put(RUNTIME_STATE, "other.1", b"x")
        assert sorted(await bridge.kv_keys(RUNTIME_STATE, "k.")) == sorted(keys)
        assert await bridge.kv_keys(RUNTIME_STATE, "other.") == ["other.1"]
        assert await bridge.kv_keys(RUNTIME_STATE, "none.") == []


async def test_nats_py_dropping_messages_is_loud_and_counted(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """nats-py reports messages it drops only to the error callback: that is an
    ERROR line naming the subject (never the payload) and a counter."""
    nc = bridge.nc

    async def slow(msg: Any) -> None:
        await asyncio.sleep(0.05)

    async def flood() -> None:
        sub = await nc.subscribe("slow.subject", cb=slow, pending_msgs_limit=2)
        for _ in range(50):
            await nc.publish("slow.subject", b"secret-payload")
        await nc.flush()
        await asyncio.sleep(0.2)
        await sub.unsubscribe()

    with trio.fail_after(10), caplog.at_level(logging.WARNING):
        await bridge.call(flood)
    assert bridge.stats.client_errors.get("SlowConsumerError", 0) > 0
    lines = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert any("SlowConsumerError" in line and "slow.subject" in line for line in lines)
    assert not any("secret-payload" in r.getMessage() for r in caplog.records)
