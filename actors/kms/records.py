"""Key records of the KMS and where they are stored.

The stored forms of KEKs and wrapped DEKs (``dek.<ref>`` in
``RUNTIME_STATE``), their parsers (which reject anything malformed as
``DecryptionFailed``), the storage contract (``KeyValueStore``) and its NATS
KV adapter (``BucketStore``).

KEKs are sealed by the master key (``MasterKey``, which never enters NATS):
``mkek.<ref>`` (and ``muser.<id>`` for the legacy per-user body keys) in
``ENCRYPTION_KEYS``, each naming the master key's id. The raw forms an older
Chatto stored (``kek.<ref>``, ``user.<id>``) are still read, until the
start-up migration has sealed and erased them.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import TYPE_CHECKING, Any, Protocol

from chatto.crypto import aead

if TYPE_CHECKING:
    from chatto.bus.bridge import NatsBridge

ALG = "xchacha20poly1305-ietf"
KEK_VERSION = 1
SEALED_VERSION = 2
WRAP_VERSION = 1
SEALED_KEK = "mkek."
SEALED_USER_KEY = "muser."
RAW_KEK = "kek."
RAW_USER_KEY = "user."


class MasterKey(Protocol):
    """Seals and opens KEKs; its key never leaves it (a file, the environment, an HSM)."""

    key_id: str

    async def wrap(self, plaintext: bytes, aad: bytes) -> bytes: ...

    async def unwrap(self, sealed: bytes, aad: bytes) -> bytes: ...

    def statistics(self) -> dict[str, int]:
        """Counters of master-key operations (``wraps``, ``unwraps``, ...)."""
        ...


# --- storage --------------------------------------------------------------


class KeyValueStore(Protocol):
    """Where key records live; ``create`` raises a ``ConflictError`` if the key exists."""

    async def get(self, key: str) -> bytes | None: ...

    async def create(self, key: str, value: bytes) -> None: ...

    async def put(self, key: str, value: bytes) -> None: ...

    async def delete(self, key: str) -> None:
        """Destroy every stored copy of the record (nothing left on disk)."""
        ...


class BucketStore:
    """``KeyValueStore`` over one NATS KV bucket."""

    def __init__(self, bridge: NatsBridge, bucket: str) -> None:
        self._bridge = bridge
        self._bucket = bucket

    async def get(self, key: str) -> bytes | None:
        entry = await self._bridge.kv_get(self._bucket, key)
        return None if entry is None else bytes(entry.value)

    async def create(self, key: str, value: bytes) -> None:
        await self._bridge.kv_create(self._bucket, key, value)

    async def put(self, key: str, value: bytes) -> None:
        await self._bridge.kv_put(self._bucket, key, value)

    async def delete(self, key: str) -> None:
        # Key material: overwritten on disk, not only marked deleted.
        await self._bridge.kv_erase(self._bucket, key)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: Any) -> bytes:
    if not isinstance(text, str):
        raise ValueError("not base64 text")
    return base64.b64decode(text.encode("ascii"), validate=True)


# --- records --------------------------------------------------------------


def kek_record(key: bytes, created_ms: int) -> bytes:
    """The stored form of a KEK in ``ENCRYPTION_KEYS``."""
    record = {"v": KEK_VERSION, "alg": ALG, "key": _b64(key), "created_ms": created_ms}
    return json.dumps(record, separators=(",", ":")).encode()


def parse_kek_record(raw: bytes) -> bytes:
    """The KEK in a stored record; older raw 32-byte records are read as they are."""
    if len(raw) == aead.KEY_BYTES:
        return raw
    try:
        record = json.loads(raw)
        key = _unb64(record["key"])
        supported = record.get("v") == KEK_VERSION and record.get("alg") == ALG
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise aead.DecryptionFailed("key record is malformed") from exc
    if not supported or len(key) != aead.KEY_BYTES:
        raise aead.DecryptionFailed("key record has an unsupported format")
    return key


def dek_record(kek_ref: str, wrapped: bytes) -> bytes:
    """The stored form of a wrapped DEK in ``RUNTIME_STATE``."""
    record = {"v": WRAP_VERSION, "kek": kek_ref, "alg": ALG, "wrapped": _b64(wrapped)}
    return json.dumps(record, separators=(",", ":")).encode()


def parse_dek_record(raw: bytes) -> tuple[str, bytes]:
    """(kek ref, wrapped DEK) of a stored record."""
    try:
        record = json.loads(raw)
        kek_ref, wrapped = record["kek"], _unb64(record["wrapped"])
        supported = record.get("v") == WRAP_VERSION and record.get("alg") == ALG
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise aead.DecryptionFailed("wrapped key record is malformed") from exc
    if not supported or not isinstance(kek_ref, str):
        raise aead.DecryptionFailed("wrapped key record has an unsupported format")
    return kek_ref, wrapped


def _sealed_aad(name: str) -> bytes:
    # The record's own name: a sealed KEK copied under another name fails.
    return b"chatto.sealed-key.v2\x00" + name.encode()


async def seal_key_record(master: MasterKey, name: str, key: bytes, created_ms: int) -> bytes:
    """The stored form of a KEK sealed by the master key, under record ``name``."""
    record = {
        "v": SEALED_VERSION,
        "alg": ALG,
        "mk": master.key_id,
        "wrapped": _b64(await master.wrap(key, _sealed_aad(name))),
        "created_ms": created_ms,
    }
    return json.dumps(record, separators=(",", ":")).encode()


def sealed_by(raw: bytes) -> str:
    """The id of the master key a sealed record names ("" if it names none)."""
    try:
        mk = json.loads(raw).get("mk", "")
    except (ValueError, AttributeError):
        return ""
    return mk if isinstance(mk, str) else ""


async def open_key_record(master: MasterKey, name: str, raw: bytes) -> bytes:
    """The KEK in a sealed record; ``DecryptionFailed`` if malformed or another key's."""
    try:
        record = json.loads(raw)
        wrapped, mk = _unb64(record["wrapped"]), record["mk"]
        supported = record.get("v") == SEALED_VERSION and record.get("alg") == ALG
    except (ValueError, KeyError, TypeError, AttributeError, binascii.Error) as exc:
        raise aead.DecryptionFailed("sealed key record is malformed") from exc
    if not supported:
        raise aead.DecryptionFailed("sealed key record has an unsupported format")
    if mk != master.key_id:
        raise aead.DecryptionFailed("key record is sealed by another master key")
    key = await master.unwrap(wrapped, _sealed_aad(name))
    if len(key) != aead.KEY_BYTES:
        raise aead.DecryptionFailed("sealed key record holds no key")
    return key
