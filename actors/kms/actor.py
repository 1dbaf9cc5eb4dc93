"""The KMS actor: the only code that touches key-encryption keys (KEKs).

KEKs live in ``ENCRYPTION_KEYS`` under opaque ``mkek.<ref>`` records, sealed
by the master key (``MasterKey``: a key file, the environment, an HSM), which
never enters NATS; wrapped data-encryption keys (DEKs) live in
``RUNTIME_STATE`` under ``dek.<ref>``.
A DEK is wrapped with its KEK and an AAD naming the user, purpose and epoch
(``chatto.crypto.aad.dek_wrap_aad``). Refs are random tokens, never derived
from user ids. Shredding deletes both records and every cached copy, so
ciphertext under those DEKs can never be opened again.

One actor per process keeps bounded LRU caches of KEKs and unwrapped DEKs.
Key records and their storage adapter are in ``actors.kms.records``. Key
bytes never reach logs or error messages.
"""

from __future__ import annotations

import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import attrs

from actors.kms.records import (
    ALG,
    RAW_KEK,
    RAW_USER_KEY,
    SEALED_KEK,
    SEALED_USER_KEY,
    WRAP_VERSION,
    KeyValueStore,
    MasterKey,
    dek_record,
    open_key_record,
    parse_dek_record,
    parse_kek_record,
    seal_key_record,
)
from chatto.crypto import aead
from chatto.errors import ChattoError, InvalidInputError

if TYPE_CHECKING:
    from actors.runtime import ActorSystem

DEFAULT_CACHE_SIZE = 4096
KIND = "kms"

V = TypeVar("V")


class KeyShredded(ChattoError):
    """The key was destroyed (account deleted) or never existed: nobody's fault now."""

    code = "KEY_SHREDDED"
    http_status = 410


# --- commands -------------------------------------------------------------


@attrs.frozen
class DekHandle:
    """Where a DEK is and how it is wrapped (what a UserDEKGenerated event records)."""

    dek_ref: str
    kek_ref: str
    alg: str = ALG
    wrap_version: int = WRAP_VERSION


@attrs.frozen
class CreateKek:
    """Make and store a new KEK; replies with its ref."""


@attrs.frozen
class GenerateDek:
    """Make a DEK wrapped by ``kek_ref`` under ``aad``; replies with a ``DekHandle``."""

    kek_ref: str
    aad: bytes = attrs.field(repr=False)


@attrs.frozen
class UnwrapDek:
    """Reply with the plaintext DEK; ``KeyShredded`` or ``DecryptionFailed`` otherwise."""

    dek_ref: str
    kek_ref: str
    aad: bytes = attrs.field(repr=False)


@attrs.frozen
class EvictKeys:
    """Drop cached copies of keys another process shredded (no storage I/O)."""

    kek_refs: tuple[str, ...]
    dek_refs: tuple[str, ...]


@attrs.frozen
class ShredKeys:
    """Destroy DEK and KEK records (and legacy ``user.<id>`` keys); idempotent."""

    kek_refs: tuple[str, ...]
    dek_refs: tuple[str, ...]
    legacy_user_ids: tuple[str, ...] = ()


@attrs.frozen
class LegacyUserKey:
    """Reply with the raw per-user key of legacy v1 bodies (``user.<id>``)."""

    user_id: str


@attrs.frozen
class KmsStats:
    """Reply with the actor's ``statistics()``."""


@attrs.frozen
class MasterKeyStats:
    """Reply with the master key's ``statistics()`` (operations in an HSM, say)."""


# --- state ----------------------------------------------------------------


class _Lru(Generic[V]):
    """A bounded map that forgets the least recently used entry first."""

    def __init__(self, size: int) -> None:
        if size < 1:
            raise ValueError("cache size must be at least 1")
        self.size = size
        self._data: OrderedDict[str, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str) -> V | None:
        value = self._data.get(key)
        if value is not None:
            self._data.move_to_end(key)
        return value

    def put(self, key: str, value: V) -> None:
        self._data[key] = value
        self._data.move_to_end(key)
        while len(self._data) > self.size:
            self._data.popitem(last=False)

    def drop(self, key: str) -> None:
        self._data.pop(key, None)

    def drop_where(self, doomed: Callable[[V], bool]) -> None:
        for key in [k for k, v in self._data.items() if doomed(v)]:
            del self._data[key]


@attrs.frozen
class _CachedDek:
    # The wrapping context is kept so a warm cache answers exactly what a cold
    # unwrap would: a wrong kek ref or AAD must not be served from memory.
    kek_ref: str
    aad: bytes = attrs.field(repr=False)
    key: bytes = attrs.field(repr=False)


@attrs.define
class KmsCounters:
    """Counters (tests and benchmarks prove which code paths touched keys)."""

    unwrap_calls: int = 0
    cache_hits: int = 0
    keks_loaded: int = 0
    master_unwraps: int = 0  # KEKs opened with the master key (cold cache only)


def _new_ref() -> str:
    return secrets.token_hex(16)


# --- the actor ------------------------------------------------------------


class KmsActor:
    """Creates, wraps, unwraps and shreds keys; one command at a time."""

    def __init__(
        self,
        keks: KeyValueStore,
        deks: KeyValueStore,
        master: MasterKey,
        cache_size: int = DEFAULT_CACHE_SIZE,
    ) -> None:
        self._keks = keks
        self._deks = deks
        self._master = master
        self._kek_cache: _Lru[bytes] = _Lru(cache_size)
        self._dek_cache: _Lru[_CachedDek] = _Lru(cache_size)
        self._counters = KmsCounters()

    def statistics(self) -> dict[str, int]:
        """unwrap_calls, cache_hits (DEK cache), keks_loaded (KEK reads from storage),
        master_unwraps (of those, opened with the master key)."""
        return attrs.asdict(self._counters)

    async def start(self) -> None:
        """Nothing to load: keys are read lazily and cached."""

    async def handle(self, command: Any) -> Any:
        match command:
            case CreateKek():
                return await self._create_kek()
            case GenerateDek():
                return await self._generate(command)
            case UnwrapDek():
                return await self._unwrap(command)
            case ShredKeys():
                return await self._shred(command)
            case EvictKeys():
                return self._evict(command)
            case LegacyUserKey():
                return await self._legacy_user_key(command.user_id)
            case KmsStats():
                return self.statistics()
            case MasterKeyStats():
                return self._master.statistics()
        raise InvalidInputError(f"kms cannot handle {type(command).__name__}")

    async def _create_kek(self) -> str:
        ref, key = _new_ref(), aead.new_key()
        name = SEALED_KEK + ref
        sealed = await seal_key_record(self._master, name, key, int(time.time() * 1000))
        await self._keks.create(name, sealed)
        self._kek_cache.put(ref, key)
        return ref

    async def _kek(self, ref: str) -> bytes:
        key = self._kek_cache.get(ref)
        if key is not None:
            return key
        key = await self._stored_key(SEALED_KEK + ref, RAW_KEK + ref)
        if key is None:
            raise KeyShredded("the key-encryption key is gone")
        self._counters.keks_loaded += 1
        self._kek_cache.put(ref, key)
        return key

    async def _stored_key(self, sealed_name: str, raw_name: str) -> bytes | None:
        """A sealed record, or the raw one an older Chatto wrote (until migrated)."""
        raw = await self._keks.get(sealed_name)
        if raw is not None:
            self._counters.master_unwraps += 1
            return await open_key_record(self._master, sealed_name, raw)
        raw = await self._keks.get(raw_name)
        return None if raw is None else parse_kek_record(raw)

    async def _generate(self, cmd: GenerateDek) -> DekHandle:
        kek = await self._kek(cmd.kek_ref)
        dek, ref = aead.new_key(), _new_ref()
        wrapped = aead.seal(kek, dek, cmd.aad)
        await self._deks.create("dek." + ref, dek_record(cmd.kek_ref, wrapped))
        self._dek_cache.put(ref, _CachedDek(cmd.kek_ref, cmd.aad, dek))
        return DekHandle(ref, cmd.kek_ref)

    async def _unwrap(self, cmd: UnwrapDek) -> bytes:
        self._counters.unwrap_calls += 1
        cached = self._dek_cache.get(cmd.dek_ref)
        if cached is not None and cached.kek_ref == cmd.kek_ref and cached.aad == cmd.aad:
            self._counters.cache_hits += 1
            return cached.key
        raw = await self._deks.get("dek." + cmd.dek_ref)
        if raw is None:
            raise KeyShredded("the data key is gone")
        kek_ref, wrapped = parse_dek_record(raw)
        if kek_ref != cmd.kek_ref:
            raise aead.DecryptionFailed("the data key is wrapped by another key")
        dek = aead.open_sealed(await self._kek(kek_ref), wrapped, cmd.aad)
        self._dek_cache.put(cmd.dek_ref, _CachedDek(kek_ref, cmd.aad, dek))
        return dek

    async def _legacy_user_key(self, user_id: str) -> bytes:
        key = await self._stored_key(SEALED_USER_KEY + user_id, RAW_USER_KEY + user_id)
        if key is None:
            raise KeyShredded("no legacy key for this user")
        return key

    def _evict(self, cmd: EvictKeys) -> None:
        for ref in cmd.dek_refs:
            self._dek_cache.drop(ref)
        doomed = frozenset(cmd.kek_refs)
        self._dek_cache.drop_where(lambda entry: entry.kek_ref in doomed)
        for ref in cmd.kek_refs:
            self._kek_cache.drop(ref)

    async def _shred(self, cmd: ShredKeys) -> None:
        # DEK records first: if we die half-way, the KEKs that remain still
        # cannot open anything whose wrapped record is already gone.
        for ref in cmd.dek_refs:
            self._dek_cache.drop(ref)
            await self._deks.delete("dek." + ref)
        doomed = frozenset(cmd.kek_refs)
        self._dek_cache.drop_where(lambda entry: entry.kek_ref in doomed)
        for ref in cmd.kek_refs:
            self._kek_cache.drop(ref)
            await self._keks.delete(SEALED_KEK + ref)
            await self._keks.delete(RAW_KEK + ref)
        for user_id in cmd.legacy_user_ids:
            await self._keks.delete(SEALED_USER_KEY + user_id)
            await self._keks.delete(RAW_USER_KEY + user_id)


# --- client ---------------------------------------------------------------


class Kms:
    """Typed client of the KMS actor."""

    def __init__(self, system: ActorSystem, kind: str = KIND) -> None:
        self._system = system
        self._kind = kind

    async def create_kek(self) -> str:
        """A new KEK's ref."""
        ref: str = await self._system.ask(self._kind, "", CreateKek())
        return ref

    async def generate_dek(self, kek_ref: str, aad: bytes) -> DekHandle:
        """A new DEK wrapped by ``kek_ref`` under ``aad``."""
        handle: DekHandle = await self._system.ask(self._kind, "", GenerateDek(kek_ref, aad))
        return handle

    async def unwrap_dek(self, dek_ref: str, kek_ref: str, aad: bytes) -> bytes:
        """The plaintext DEK; ``KeyShredded`` once destroyed, ``DecryptionFailed`` on mismatch."""
        key: bytes = await self._system.ask(self._kind, "", UnwrapDek(dek_ref, kek_ref, aad))
        return key

    async def legacy_user_key(self, user_id: str) -> bytes:
        """The raw ``user.<id>`` key of legacy v1 bodies; ``KeyShredded`` if absent."""
        key: bytes = await self._system.ask(self._kind, "", LegacyUserKey(user_id))
        return key

    async def shred(
        self,
        kek_refs: tuple[str, ...],
        dek_refs: tuple[str, ...],
        *,
        legacy_user_ids: tuple[str, ...] = (),
    ) -> None:
        """Destroy the keys for good (idempotent)."""
        await self._system.ask(
            self._kind, "", ShredKeys(tuple(kek_refs), tuple(dek_refs), tuple(legacy_user_ids))
        )

    async def statistics(self) -> dict[str, int]:
        """The actor's counters."""
        stats: dict[str, int] = await self._system.ask(self._kind, "", KmsStats())
        return stats

    async def master_statistics(self) -> dict[str, int]:
        """The master key's counters (they outlive a passivated actor's caches)."""
        stats: dict[str, int] = await self._system.ask(self._kind, "", MasterKeyStats())
        return stats


def register_kms(
    system: ActorSystem,
    keks: KeyValueStore,
    deks: KeyValueStore,
    master: MasterKey,
    cache_size: int = DEFAULT_CACHE_SIZE,
    kind: str = KIND,
) -> None:
    """Register the one KMS actor of this process (id ``""``) under ``kind``."""
    system.register(kind, lambda _ident: KmsActor(keks, deks, master, cache_size))
