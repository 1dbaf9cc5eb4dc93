"""The KMS actor: the only code that touches key-encryption keys (KEKs).

KEKs live in ``ENCRYPTION_KEYS`` under opaque ``kek.<ref>`` records; wrapped
data-encryption keys (DEKs) live in ``RUNTIME_STATE`` under ``dek.<ref>``.
A DEK is wrapped with its KEK and an AAD naming the user, purpose and
epoch. Refs are random, never derived from user ids. Shredding deletes both
records and every cached copy: ciphertext under those DEKs can never be
opened again. One actor per process keeps bounded LRU caches of KEKs and
unwrapped DEKs; key bytes are never logged.
"""

from __future__ import annotations

import base64
import json
import secrets
import time
from collections import OrderedDict
from typing import Any, Protocol

import attrs

from actors.runtime import ActorSystem
from chatto.crypto import aead
from chatto.errors import ChattoError, InvalidInputError

ALG = "xchacha20poly1305-ietf"
WRAP_VERSION = 1


class KeyShredded(ChattoError):
    """The key was destroyed (account deleted) or never existed."""

    code = "KEY_SHREDDED"
    http_status = 410


class KeyValueStore(Protocol):
    async def get(self, key: str) -> bytes | None: ...

    async def create(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None: ...


class BucketStore:
    """``KeyValueStore`` over one NATS KV bucket."""

    def __init__(self, bridge: Any, bucket: str) -> None:
        self._bridge = bridge
        self._bucket = bucket

    async def get(self, key: str) -> bytes | None:
        entry = await self._bridge.kv_get(self._bucket, key)
        return None if entry is None else bytes(entry.value)

    async def create(self, key: str, value: bytes) -> None:
        await self._bridge.kv_create(self._bucket, key, value)

    async def delete(self, key: str) -> None:
        await self._bridge.kv_delete(self._bucket, key)


@attrs.frozen
class DekHandle:
    """Where a DEK is and how it is wrapped (what a UserDEKGenerated event records)."""

    dek_ref: str
    kek_ref: str
    alg: str = ALG
    wrap_version: int = WRAP_VERSION


@attrs.frozen
class CreateKek:
    pass


@attrs.frozen
class GenerateDek:
    kek_ref: str
    aad: bytes


@attrs.frozen
class UnwrapDek:
    dek_ref: str
    kek_ref: str
    aad: bytes


@attrs.frozen
class LegacyUserKey:
    """The raw per-user key of legacy v1 bodies (``user.<id>``), if any."""

    user_id: str


@attrs.frozen
class KmsStats:
    """Counters (tests prove which code paths touched keys)."""


@attrs.frozen
class ShredKeys:
    kek_refs: tuple[str, ...]
    dek_refs: tuple[str, ...]


class _Lru:
    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[str, bytes] = OrderedDict()

    def get(self, key: str) -> bytes | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: bytes) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        self._data.pop(key, None)


def _new_ref() -> str:
    return secrets.token_hex(16)


class KmsActor:
    """Creates, wraps, unwraps and shreds keys; one command at a time."""

    def __init__(self, keks: KeyValueStore, deks: KeyValueStore, cache_size: int = 4096):
        self._keks = keks
        self._deks = deks
        self._kek_cache = _Lru(cache_size)
        self._dek_cache = _Lru(cache_size)
        self.unwrap_calls = 0
        self.cache_hits = 0
        self.keks_loaded = 0

    def statistics(self) -> dict[str, int]:
        return {
            "unwrap_calls": self.unwrap_calls,
            "cache_hits": self.cache_hits,
            "keks_loaded": self.keks_loaded,
        }

    async def start(self) -> None:
        return None

    async def handle(self, command: Any) -> Any:
        if isinstance(command, CreateKek):
            return await self._create_kek()
        if isinstance(command, GenerateDek):
            return await self._generate(command)
        if isinstance(command, UnwrapDek):
            return await self._unwrap(command)
        if isinstance(command, ShredKeys):
            return await self._shred(command)
        if isinstance(command, KmsStats):
            return self.statistics()
        if isinstance(command, LegacyUserKey):
            raw = await self._keks.get("user." + command.user_id)
            if raw is None or len(raw) != aead.KEY_BYTES:
                raise KeyShredded("no legacy key for this user")
            return raw
        raise InvalidInputError(f"kms cannot handle {type(command).__name__}")

    async def _create_kek(self) -> str:
        ref, key = _new_ref(), aead.new_key()
        record = {
            "v": 1,
            "alg": ALG,
            "key": base64.b64encode(key).decode(),
            "created_ms": int(time.time() * 1000),
        }
        await self._keks.create("kek." + ref, json.dumps(record).encode())
        self._kek_cache.put(ref, key)
        return ref

    async def _kek(self, ref: str) -> bytes:
        key = self._kek_cache.get(ref)
        if key is not None:
            return key
        raw = await self._keks.get("kek." + ref)
        if raw is None:
            raise KeyShredded("the key-encryption key is gone")
        key = _parse_kek(raw)
        self.keks_loaded += 1
        self._kek_cache.put(ref, key)
        return key

    async def _generate(self, cmd: GenerateDek) -> DekHandle:
        kek = await self._kek(cmd.kek_ref)
        dek, ref = aead.new_key(), _new_ref()
        wrapped = aead.seal(kek, dek, cmd.aad)
        record = {
            "v": WRAP_VERSION,
            "kek": cmd.kek_ref,
            "alg": ALG,
            "wrapped": base64.b64encode(wrapped).decode(),
        }
        await self._deks.create("dek." + ref, json.dumps(record).encode())
        self._dek_cache.put(ref, dek)
        return DekHandle(ref, cmd.kek_ref)

    async def _unwrap(self, cmd: UnwrapDek) -> bytes:
        self.unwrap_calls += 1
        cached = self._dek_cache.get(cmd.dek_ref)
        if cached is not None:
            self.cache_hits += 1
            return cached
        raw = await self._deks.get("dek." + cmd.dek_ref)
        if raw is None:
            raise KeyShredded("the data key is gone")
        try:
            record = json.loads(raw)
            kek_ref, wrapped = str(record["kek"]), base64.b64decode(record["wrapped"])
        except (ValueError, KeyError, TypeError) as exc:
            raise aead.DecryptionFailed("wrapped key record is malformed") from exc
        if kek_ref != cmd.kek_ref:
            raise aead.DecryptionFailed("data key is wrapped by another key")
        dek = aead.open_sealed(await self._kek(kek_ref), wrapped, cmd.aad)
        self._dek_cache.put(cmd.dek_ref, dek)
        return dek

    async def _shred(self, cmd: ShredKeys) -> None:
        for ref in cmd.dek_refs:
            await self._deks.delete("dek." + ref)
            self._dek_cache.drop(ref)
        for ref in cmd.kek_refs:
            await self._keks.delete("kek." + ref)
            self._kek_cache.drop(ref)


def _parse_kek(raw: bytes) -> bytes:
    if len(raw) == aead.KEY_BYTES:  # legacy raw 32-byte record
        return raw
    try:
        key = base64.b64decode(json.loads(raw)["key"])
    except (ValueError, KeyError, TypeError) as exc:
        raise aead.DecryptionFailed("key record is malformed") from exc
    if len(key) != aead.KEY_BYTES:
        raise aead.DecryptionFailed("key record is malformed")
    return key


class Kms:
    """Typed client of the KMS actor."""

    def __init__(self, system: ActorSystem, kind: str = "kms") -> None:
        self._system = system
        self._kind = kind

    async def create_kek(self) -> str:
        return str(await self._system.ask(self._kind, "", CreateKek()))

    async def generate_dek(self, kek_ref: str, aad: bytes) -> DekHandle:
        handle: DekHandle = await self._system.ask(self._kind, "", GenerateDek(kek_ref, aad))
        return handle

    async def unwrap_dek(self, dek_ref: str, kek_ref: str, aad: bytes) -> bytes:
        key: bytes = await self._system.ask(self._kind, "", UnwrapDek(dek_ref, kek_ref, aad))
        return key

    async def statistics(self) -> dict[str, int]:
        stats: dict[str, int] = await self._system.ask(self._kind, "", KmsStats())
        return stats

    async def legacy_user_key(self, user_id: str) -> bytes:
        key: bytes = await self._system.ask(self._kind, "", LegacyUserKey(user_id))
        return key

    async def shred(self, kek_refs: tuple[str, ...], dek_refs: tuple[str, ...]) -> None:
        await self._system.ask(self._kind, "", ShredKeys(kek_refs, dek_refs))


def register_kms(
    system: ActorSystem, keks: KeyValueStore, deks: KeyValueStore, cache_size: int = 4096
) -> None:
    """One KMS actor per process; it is never passivated for long (cheap to reload)."""
    system.register("kms", lambda _id: KmsActor(keks, deks, cache_size))
