"""Buckets made by an older Chatto (deletes denied) are moved at start so key
records can be securely erased; an interrupted move is finished (issue #17)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import trio
from nats.js.api import KeyValueConfig, StorageType

from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.rebuild import MOVED_MARKER
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE, bootstrap_storage, kv_stream_config
from tests.conftest import NatsProc


@asynccontextmanager
async def _bridge(server: NatsProc) -> AsyncIterator[NatsBridge]:
    async with open_nats_bridge(NatsSettings(server.url, token=server.token)) as bridge:
        yield bridge


async def _old_bucket(bridge: NatsBridge, bucket: str) -> None:
    """A bucket as nats-py makes it (what Chatto did before), with TTLs allowed."""
    js = bridge.js

    async def make() -> None:
        await js.create_key_value(KeyValueConfig(bucket=bucket, history=1))
        info = await js.stream_info(f"KV_{bucket}")
        info.config.allow_msg_ttl = True
        await js.update_stream(info.config)

    await bridge.call(make)


async def _deny_delete(bridge: NatsBridge, bucket: str) -> bool:
    js = bridge.js
    info = await bridge.call(lambda: js.stream_info(f"KV_{bucket}"))
    return bool(info.config.deny_delete)


async def _ttl(bridge: NatsBridge, bucket: str, key: str) -> str | None:
    js = bridge.js
    msg = await bridge.call(lambda: js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{key}"))
    return (msg.headers or {}).get("Nats-TTL")


async def test_an_old_bucket_is_moved_with_its_records_and_ttls(nats_server: NatsProc) -> None:
    with trio.fail_after(30):
        async with _bridge(nats_server) as bridge:
            for bucket in (ENCRYPTION_KEYS, RUNTIME_STATE):
                await _old_bucket(bridge, bucket)
            for i in range(300):
                await bridge.kv_put(ENCRYPTION_KEYS, f"kek.{i}", b"key-%d" % i)
            await bridge.kv_put(RUNTIME_STATE, "session.a", b"s", ttl_seconds=600)
            await bridge.kv_put(RUNTIME_STATE, "dek.x", b"wrapped")
            await bridge.kv_delete(RUNTIME_STATE, "dek.x")
            assert await _deny_delete(bridge, ENCRYPTION_KEYS)

            await bootstrap_storage(bridge)

            for bucket in (ENCRYPTION_KEYS, RUNTIME_STATE):
                assert not await _deny_delete(bridge, bucket)
            assert sorted(await bridge.kv_keys(ENCRYPTION_KEYS)) == sorted(
                f"kek.{i}" for i in range(300)
            )
            entry = await bridge.kv_get(ENCRYPTION_KEYS, "kek.7")
            assert entry is not None and entry.value == b"key-7"
            assert await bridge.kv_keys(RUNTIME_STATE) == ["session.a"]
            ttl = await _ttl(bridge, RUNTIME_STATE, "session.a")
            assert ttl is not None and 590 <= int(ttl.rstrip("s")) <= 600
            # And now a key record can be overwritten on disk.
            assert await bridge.kv_erase(ENCRYPTION_KEYS, "kek.7") == 1
            assert await bridge.kv_get(ENCRYPTION_KEYS, "kek.7") is None
            # A second start has nothing to move.
            await bootstrap_storage(bridge)
            assert len(await bridge.kv_keys(ENCRYPTION_KEYS)) == 299


async def test_a_move_interrupted_after_the_old_stream_was_dropped_is_finished(
    nats_server: NatsProc,
) -> None:
    with trio.fail_after(30):
        async with _bridge(nats_server) as bridge:
            js = bridge.js
            holding = f"{ENCRYPTION_KEYS}_MOVE"
            config = kv_stream_config(holding, StorageType.FILE, 1)
            await bridge.call(lambda: js.add_stream(config))
            for i in range(50):
                await bridge.kv_put(holding, f"kek.{i}", b"k")
            await bridge.kv_put(holding, MOVED_MARKER, b"50")
            # The old stream is gone (step 2 done), the process died.
            await bootstrap_storage(bridge)
            assert sorted(await bridge.kv_keys(ENCRYPTION_KEYS)) == sorted(
                f"kek.{i}" for i in range(50)
            )
            assert not await _deny_delete(bridge, ENCRYPTION_KEYS)
            streams = await bridge.call(js.streams_info)
            assert f"KV_{holding}" not in {s.config.name for s in streams}


async def test_a_move_interrupted_while_copying_starts_over(nats_server: NatsProc) -> None:
    with trio.fail_after(30):
        async with _bridge(nats_server) as bridge:
            js = bridge.js
            await _old_bucket(bridge, ENCRYPTION_KEYS)
            for i in range(40):
                await bridge.kv_put(ENCRYPTION_KEYS, f"kek.{i}", b"k")
            holding = f"{ENCRYPTION_KEYS}_MOVE"
            config = kv_stream_config(holding, StorageType.FILE, 1)
            await bridge.call(lambda: js.add_stream(config))
            await bridge.kv_put(holding, "kek.0", b"k")  # a partial copy, no marker
            await bootstrap_storage(bridge)
            assert len(await bridge.kv_keys(ENCRYPTION_KEYS)) == 40
            assert not await _deny_delete(bridge, ENCRYPTION_KEYS)
