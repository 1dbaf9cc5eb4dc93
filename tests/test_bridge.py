"""The Trio-facing NATS bridge against a real nats-server."""

from __future__ import annotations

import pytest
import trio

from chatto.bus.batch import NO_STREAM_RETRY_DELAYS
from chatto.bus.bridge import (
    NatsBridge,
    NatsSettings,
    open_nats_bridge,
)
from chatto.bus.buckets import KeyExistsError
from chatto.bus.reader import open_subscription
from chatto.bus.storage import EVENT_STREAM, RUNTIME_STATE, bootstrap_storage
from chatto.errors import BusyError, StaleWriteError, StartupError, UnavailableError
from tests.conftest import NatsProc


async def test_publish_ack_and_conditional_append(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        s1 = await bridge.publish("evt.t.x.a", b"1", expect_last_seq=0, expect_subject="evt.t.x.>")
        s2 = await bridge.publish("evt.t.x.b", b"2", expect_last_seq=s1, expect_subject="evt.t.x.>")
        assert s2 > s1
        with pytest.raises(StaleWriteError):
            await bridge.publish("evt.t.x.a", b"3", expect_last_seq=s1, expect_subject="evt.t.x.>")
        # Another entity is not affected by x's sequence.
        await bridge.publish("evt.t.y.a", b"4", expect_last_seq=0, expect_subject="evt.t.y.>")
        assert await bridge.last_seq(EVENT_STREAM, "evt.t.x.>") == s2
        assert await bridge.last_seq(EVENT_STREAM, "evt.t.none.>") == 0


async def test_msg_id_dedupes(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        a = await bridge.publish("evt.t.d.a", b"1", msg_id="same")
        b = await bridge.publish("evt.t.d.a", b"1", msg_id="same")
        assert a == b
        assert await bridge.stream_last_seq(EVENT_STREAM) == a


async def test_read_range_and_ordered_reader(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        for i in range(300):
            await bridge.publish(f"evt.t.r{i % 3}.a", str(i).encode())
        head = await bridge.stream_last_seq(EVENT_STREAM)
        got = []
        async for batch in bridge.read_range(EVENT_STREAM, "evt.t.r1.>", 0, head):
            got.extend(int(m.data) for m in batch)
        assert got == list(range(1, 300, 3))
        async with bridge.ordered_reader(EVENT_STREAM, "evt.>", head + 1) as next_batch:
            await bridge.publish("evt.t.live.a", b"live")
            batch = await next_batch(10)
            assert [m.data for m in batch] == [b"live"]


async def test_kv_ttl_create_delete(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        assert await bridge.kv_get(RUNTIME_STATE, "k1") is None
        await bridge.kv_create(RUNTIME_STATE, "k1", b"v1")
        with pytest.raises(KeyExistsError):
            await bridge.kv_create(RUNTIME_STATE, "k1", b"v2")
        entry = await bridge.kv_get(RUNTIME_STATE, "k1")
        assert entry is not None and entry.value == b"v1"
        await bridge.kv_delete(RUNTIME_STATE, "k1")
        assert await bridge.kv_get(RUNTIME_STATE, "k1") is None
        await bridge.kv_create(RUNTIME_STATE, "k1", b"v3")  # absent again after delete
        await bridge.kv_put(RUNTIME_STATE, "ttl", b"short", ttl_seconds=1)
        assert await bridge.kv_get(RUNTIME_STATE, "ttl") is not None
        with pytest.raises(ValueError):
            await bridge.kv_put(RUNTIME_STATE, "ttl", b"x", ttl_seconds=0)
    with trio.fail_after(10):
        while await bridge.kv_get(RUNTIME_STATE, "ttl") is not None:
            await trio.sleep(0.2)


async def test_slow_subscriber_is_dropped_not_awaited(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        async with open_subscription(bridge, "live.test", capacity=5) as sub:
            for i in range(20):
                await bridge.publish_core("live.test", str(i).encode())
            await bridge.ping()
            with pytest.raises(BusyError):
                async for _batch in sub:
                    pass
            # The connection itself is fine.
            await bridge.publish("evt.t.after.a", b"ok")


async def test_bootstrap_is_idempotent(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        await bridge.publish("evt.t.keep.a", b"1")
        await bootstrap_storage(bridge)
        await bootstrap_storage(bridge)
        assert await bridge.last_seq(EVENT_STREAM, "evt.t.keep.>") > 0


async def test_unreachable_nats_is_a_clear_startup_error() -> None:
    with trio.fail_after(20), pytest.raises(StartupError, match="cannot connect to NATS"):
        async with open_nats_bridge(NatsSettings("nats://127.0.0.1:1", connect_timeout=0.5)):
            pass


async def test_reconnects_after_server_restart(bridge: NatsBridge, nats_server: NatsProc) -> None:
    with trio.fail_after(20):
        await bridge.publish("evt.t.before.a", b"1")
        nats_server.kill()
        while bridge.connected:
            await trio.sleep(0.02)
        nats_server.start()
        while not bridge.connected:
            await trio.sleep(0.05)
        assert await bridge.last_seq(EVENT_STREAM, "evt.t.before.>") > 0
        assert bridge.stats.reconnects >= 1


async def test_publish_no_stream_answered_is_retried_then_unavailable(bridge: NatsBridge) -> None:
    """No stream listening yet: nothing was stored, so the bridge tries again.

    On a cluster a stream created (or re-led) a moment ago is not yet
    listening through every node's routes; the first appends after start-up
    met that. A stream that appears within the back-off takes the message
    once; one that never appears gives UNAVAILABLE, not a hang.
    """
    js = bridge.js

    async def create_late_stream() -> None:
        await trio.sleep(0.3)
        await bridge.call(lambda: js.add_stream(name="LATE", subjects=["late.>"]))

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(create_late_stream)
            seq = await bridge.publish("late.a", b"one")
        assert seq == 1
        assert await bridge.stream_last_seq("LATE") == 1
        started = trio.current_time()
        with pytest.raises(UnavailableError, match="NoStreamResponseError"):
            await bridge.publish("nowhere.a", b"lost")
        assert trio.current_time() - started >= sum(NO_STREAM_RETRY_DELAYS)
