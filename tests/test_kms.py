"""The KMS actor on a real nats-server: wrap, unwrap, cache, shred, legacy records."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio

from actors.kms.actor import (
    CreateKek,
    GenerateDek,
    KeyShredded,
    Kms,
    KmsActor,
    ShredKeys,
    UnwrapDek,
    register_kms,
)
from actors.kms.records import ALG, BucketStore, open_key_record
from actors.runtime import RuntimeSettings, open_actor_system
from chatto.bus.bridge import NatsBridge
from chatto.bus.buckets import KeyExistsError
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE
from chatto.crypto import aad, aead
from chatto.crypto.master import new_master_key
from chatto.errors import InvalidInputError

CONTEXT = aad.dek_wrap_aad("user-1", "message-body", 1)
MASTER = new_master_key()


def _name_aad(kek_ref: str) -> bytes:
    return b"chatto.sealed-key.v2\x00mkek." + kek_ref.encode()


def stores(bridge: NatsBridge) -> tuple[BucketStore, BucketStore]:
    return BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)


@asynccontextmanager
async def open_kms(bridge: NatsBridge, cache_size: int = 4096) -> AsyncIterator[Kms]:
    """A fresh actor system (so a fresh, empty-cached KMS actor) on ``bridge``."""
    async with open_actor_system(RuntimeSettings(ask_timeout=5)) as system:
        register_kms(system, *stores(bridge), MASTER, cache_size=cache_size)
        yield Kms(system)


async def test_bucket_store_contract(bridge: NatsBridge) -> None:
    store = BucketStore(bridge, RUNTIME_STATE)
    with trio.fail_after(10):
        assert await store.get("k") is None
        await store.create("k", b"one")
        with pytest.raises(KeyExistsError):
            await store.create("k", b"two")
        await store.put("k", b"three")
        assert await store.get("k") == b"three"
        await store.delete("k")
        await store.delete("k")  # idempotent
        assert await store.get("k") is None
        await store.create("k", b"again")  # a deleted key counts as absent
        assert await store.get("k") == b"again"


async def test_unwrap_returns_the_generated_key_warm_and_cold(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        async with open_kms(bridge) as kms:
            kek_ref = await kms.create_kek()
            handle = await kms.generate_dek(kek_ref, CONTEXT)
            assert (handle.kek_ref, handle.alg, handle.wrap_version) == (kek_ref, ALG, 1)
            assert handle.dek_ref != kek_ref and "user-1" not in handle.dek_ref + kek_ref
            warm = await kms.unwrap_dek(handle.dek_ref, kek_ref, CONTEXT)
            assert len(warm) == 32
            assert await kms.statistics() == {
                "unwrap_calls": 1,
                "cache_hits": 1,
                "keks_loaded": 0,
                "master_unwraps": 0,
            }
        async with open_kms(bridge) as kms:
            assert await kms.unwrap_dek(handle.dek_ref, kek_ref, CONTEXT) == warm
            assert await kms.statistics() == {
                "unwrap_calls": 1,
                "cache_hits": 0,
                "keks_loaded": 1,
                "master_unwraps": 1,
            }


async def test_wrong_context_fails_warm_and_cold(bridge: NatsBridge) -> None:
    other_user = aad.dek_wrap_aad("user-2", "message-body", 1)
    other_epoch = aad.dek_wrap_aad("user-1", "message-body", 2)
    with trio.fail_after(10):
        async with open_kms(bridge) as kms:
            kek_ref = await kms.create_kek()
            other_kek = await kms.create_kek()
            handle = await kms.generate_dek(kek_ref, CONTEXT)
            for _ in range(2):  # the second round runs after a correct unwrap cached it
                for wrong in (other_user, other_epoch):
                    with pytest.raises(aead.DecryptionFailed):
                        await kms.unwrap_dek(handle.dek_ref, kek_ref, wrong)
                with pytest.raises(aead.DecryptionFailed):
                    await kms.unwrap_dek(handle.dek_ref, other_kek, CONTEXT)
                await kms.unwrap_dek(handle.dek_ref, kek_ref, CONTEXT)


async def test_shred_makes_keys_unrecoverable(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        async with open_kms(bridge) as kms:
            kek_ref = await kms.create_kek()
            kept_kek = await kms.create_kek()
            doomed = await kms.generate_dek(kek_ref, CONTEXT)
            kept = await kms.generate_dek(kept_kek, CONTEXT)
            await kms.unwrap_dek(doomed.dek_ref, kek_ref, CONTEXT)  # warm the cache
            await kms.shred((kek_ref,), (doomed.dek_ref,))
            await kms.shred((kek_ref,), (doomed.dek_ref,))  # idempotent
            with pytest.raises(KeyShredded) as caught:
                await kms.unwrap_dek(doomed.dek_ref, kek_ref, CONTEXT)
            assert caught.value.code == "KEY_SHREDDED"
            with pytest.raises(KeyShredded):
                await kms.generate_dek(kek_ref, CONTEXT)
            kept_key = await kms.unwrap_dek(kept.dek_ref, kept_kek, CONTEXT)
        assert await bridge.kv_get(ENCRYPTION_KEYS, f"mkek.{kek_ref}") is None
        assert await bridge.kv_get(RUNTIME_STATE, f"dek.{doomed.dek_ref}") is None
        async with open_kms(bridge) as kms:
            with pytest.raises(KeyShredded):
                await kms.unwrap_dek(doomed.dek_ref, kek_ref, CONTEXT)
            assert await kms.unwrap_dek(kept.dek_ref, kept_kek, CONTEXT) == kept_key


async def test_shredding_a_kek_alone_drops_its_cached_deks(bridge: NatsBridge) -> None:
    keks, deks = stores(bridge)
    actor = KmsActor(keks, deks, MASTER)
    with trio.fail_after(10):
        kek_ref = await actor.handle(CreateKek())
        handle = await actor.handle(GenerateDek(kek_ref, CONTEXT))
        await actor.handle(ShredKeys((kek_ref,), ()))
        with pytest.raises(KeyShredded):
            await actor.handle(UnwrapDek(handle.dek_ref, kek_ref, CONTEXT))


async def test_stored_records_hold_no_plaintext_dek(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        async with open_kms(bridge) as kms:
            kek_ref = await kms.create_kek()
            handle = await kms.generate_dek(kek_ref, CONTEXT)
            dek = await kms.unwrap_dek(handle.dek_ref, kek_ref, CONTEXT)
        kek_entry = await bridge.kv_get(ENCRYPTION_KEYS, f"mkek.{kek_ref}")
        dek_entry = await bridge.kv_get(RUNTIME_STATE, f"dek.{handle.dek_ref}")
        assert kek_entry is not None and dek_entry is not None
        kek_record = json.loads(kek_entry.value)
        assert kek_record["v"] == 2 and kek_record["alg"] == ALG
        assert kek_record["mk"] == MASTER.key_id and "key" not in kek_record
        assert isinstance(kek_record["created_ms"], int)
        # The KEK is sealed by the master key, bound to its record's name.
        kek = await MASTER.unwrap(base64.b64decode(kek_record["wrapped"]), _name_aad(kek_ref))
        other = new_master_key()
        with pytest.raises(aead.DecryptionFailed):
            await open_key_record(other, f"mkek.{kek_ref}", kek_entry.value)
        with pytest.raises(aead.DecryptionFailed):
            await open_key_record(MASTER, "mkek.another", kek_entry.value)
        dek_record = json.loads(dek_entry.value)
        assert (dek_record["v"], dek_record["kek"], dek_record["alg"]) == (1, kek_ref, ALG)
        wrapped = base64.b64decode(dek_record["wrapped"])
        assert aead.open_sealed(kek, wrapped, CONTEXT) == dek
        for raw in (kek_entry.value, dek_entry.value, wrapped):
            for form in (dek, base64.b64encode(dek), dek.hex().encode()):
                assert form not in raw
        assert kek not in dek_entry.value and base64.b64encode(kek) not in dek_entry.value
        for raw in (kek_entry.value, dek_entry.value):
            assert kek not in raw and base64.b64encode(kek) not in raw
        for key in await bridge.kv_keys(ENCRYPTION_KEYS):
            assert key.startswith("mkek.")


async def test_legacy_raw_kek_record_is_readable(bridge: NatsBridge) -> None:
    legacy_kek = aead.new_key()
    with trio.fail_after(10):
        await bridge.kv_put(ENCRYPTION_KEYS, "kek.legacyref", legacy_kek)
        async with open_kms(bridge) as kms:
            handle = await kms.generate_dek("legacyref", CONTEXT)
        async with open_kms(bridge) as kms:
            dek = await kms.unwrap_dek(handle.dek_ref, "legacyref", CONTEXT)
            assert (await kms.statistics())["keks_loaded"] == 1
        entry = await bridge.kv_get(RUNTIME_STATE, f"dek.{handle.dek_ref}")
        assert entry is not None
        wrapped = base64.b64decode(json.loads(entry.value)["wrapped"])
        assert aead.open_sealed(legacy_kek, wrapped, CONTEXT) == dek


async def test_legacy_user_key(bridge: NatsBridge) -> None:
    user_key = aead.new_key()
    with trio.fail_after(10):
        await bridge.kv_put(ENCRYPTION_KEYS, "user.u1", user_key)
        async with open_kms(bridge) as kms:
            assert await kms.legacy_user_key("u1") == user_key
            with pytest.raises(KeyShredded):
                await kms.legacy_user_key("u2")
            await kms.shred((), (), legacy_user_ids=("u1",))
            with pytest.raises(KeyShredded):
                await kms.legacy_user_key("u1")


async def test_malformed_records_fail_closed(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        await bridge.kv_put(ENCRYPTION_KEYS, "kek.bad", b'{"v":9,"alg":"rot13","key":"AA=="}')
        await bridge.kv_put(RUNTIME_STATE, "dek.bad", b"not json")
        async with open_kms(bridge) as kms:
            with pytest.raises(aead.DecryptionFailed):
                await kms.generate_dek("bad", CONTEXT)
            kek_ref = await kms.create_kek()
            with pytest.raises(aead.DecryptionFailed):
                await kms.unwrap_dek("bad", kek_ref, CONTEXT)


async def test_cache_is_bounded(bridge: NatsBridge) -> None:
    with trio.fail_after(10):
        async with open_kms(bridge, cache_size=2) as kms:
            kek_ref = await kms.create_kek()
            handles = [await kms.generate_dek(kek_ref, CONTEXT) for _ in range(3)]
            keys = [await kms.unwrap_dek(h.dek_ref, kek_ref, CONTEXT) for h in handles]
            again = [await kms.unwrap_dek(h.dek_ref, kek_ref, CONTEXT) for h in handles]
            assert again == keys and len(set(keys)) == 3
            stats = await kms.statistics()
        assert stats["unwrap_calls"] == 6
        # With room for two, cycling through three DEKs always misses.
        assert stats["cache_hits"] < stats["unwrap_calls"]
        assert stats["cache_hits"] == 0


async def test_unknown_command_is_rejected(bridge: NatsBridge) -> None:
    actor = KmsActor(*stores(bridge), MASTER)
    with trio.fail_after(10), pytest.raises(InvalidInputError):
        await actor.handle("make me a key")
