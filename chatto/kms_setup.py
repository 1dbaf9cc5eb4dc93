"""The master key at start: load it, check it against the store, seal raw KEKs.

``open_master_key`` runs after the storage bootstrap and before anything
reads a key:

1. The key comes from the configured provider (``kms.provider``): ``local``
   reads ``CHATTO_KMS_MASTER_KEY`` or ``kms.master_key_file``; without
   either, a new key file is written only if nothing in the store is sealed
   yet (a fresh server, or an older one whose KEKs are still raw), otherwise
   the start fails: the stored keys need the key that sealed them.
   ``pkcs11`` logs in to the token and finds its key (``chatto keys
   init-hsm`` creates it); the session lasts as long as the server.
2. ``master.check`` in ``ENCRYPTION_KEYS`` names the id of the key that
   seals the store (and holds a value sealed by it). Another key fails the
   start with both ids named, so a wrong or rotated-away key never leads to
   keys sealed under two masters.
3. Raw records an older Chatto wrote (``kek.<ref>``, ``user.<id>``) are
   sealed into ``mkek.<ref>``/``muser.<id>`` and then erased from disk.
   Each record is sealed before its raw form is erased and both steps can be
   repeated, so a crash half-way is finished by the next start.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from actors.kms.records import (
    RAW_KEK,
    RAW_USER_KEY,
    SEALED_KEK,
    SEALED_USER_KEY,
    MasterKey,
    open_key_record,
    parse_kek_record,
    seal_key_record,
    sealed_by,
)
from chatto.bus.bridge import NatsBridge
from chatto.bus.buckets import KeyExistsError
from chatto.bus.storage import ENCRYPTION_KEYS
from chatto.concurrency import for_each_bounded
from chatto.config_schema import Config
from chatto.crypto import aead
from chatto.crypto.master import (
    LocalMasterKey,
    MasterKeyError,
    from_environment,
    new_master_key,
    read_key_file,
    write_key_file,
)
from chatto.errors import StartupError

if TYPE_CHECKING:
    from chatto.crypto.pkcs11 import TokenSettings

log = logging.getLogger(__name__)

CHECK = "master.check"
_CHECK_VALUE = b"chatto master key check"
RAW_PREFIXES = {RAW_KEK: SEALED_KEK, RAW_USER_KEY: SEALED_USER_KEY}
SEALED_PREFIXES = (SEALED_KEK, SEALED_USER_KEY, CHECK)
MIGRATION_CONCURRENCY = 32


@asynccontextmanager
async def open_master_key(config: Config, bridge: NatsBridge) -> AsyncIterator[MasterKey]:
    """The master key of this store, checked, with every raw KEK sealed (see module doc)."""
    check = await bridge.kv_get(ENCRYPTION_KEYS, CHECK)
    async with AsyncExitStack() as stack:
        try:
            master = await stack.enter_async_context(
                open_configured_key(config, create=check is None)
            )
            if master is None:
                assert check is not None
                raise StartupError(
                    f"no master key: {config.master_key_path} does not exist and "
                    "CHATTO_KMS_MASTER_KEY is not set, but the stored keys are sealed by "
                    f"master key {sealed_by(check.value) or '?'}; restore that key file"
                )
            await ensure_check(bridge, master)
            sealed = await seal_raw_records(bridge, master)
        except MasterKeyError as exc:
            raise StartupError(exc.message) from None
        if sealed:
            log.warning("sealed %d raw key records with the master key and erased them", sealed)
        yield master


@asynccontextmanager
async def open_configured_key(config: Config, *, create: bool) -> AsyncIterator[MasterKey | None]:
    """The ``kms.provider``'s key for the block; None when ``local`` has none.

    ``create`` lets ``local`` write a new key file; a token key is never
    created here (``chatto keys init-hsm`` does that).
    """
    if config.kms.provider != "pkcs11":
        yield load_local_key(config, create=create)
        return
    settings = token_settings(config)  # first: it says so if python-pkcs11 is missing
    from chatto.crypto.pkcs11 import open_pkcs11_master_key

    async with open_pkcs11_master_key(settings, config.kms.pkcs11_key_label) as key:
        yield key


def token_settings(config: Config) -> TokenSettings:
    """Module, token and PIN of ``[kms]``; ``MasterKeyError`` without the library or a PIN."""
    try:
        from chatto.crypto.pkcs11 import TokenSettings, read_pin
    except ImportError:
        raise MasterKeyError(
            "kms.provider = pkcs11 needs python-pkcs11: pip install 'chatto[pkcs11]'"
        ) from None
    k = config.kms
    return TokenSettings(k.pkcs11_module, k.pkcs11_token_label, read_pin(config.pkcs11_pin_path))


def load_local_key(config: Config, *, create: bool) -> LocalMasterKey | None:
    """The ``local`` key: from the environment or the key file; a new file when
    ``create`` and none exists."""
    master = from_environment() or read_key_file(config.master_key_path)
    if master is not None or not create:
        return master
    path = config.master_key_path
    try:
        write_key_file(path, new_master_key())
    except MasterKeyError:
        if not path.exists():
            raise
        # Another process of this server wrote it a moment ago.
    else:
        log.warning(
            "wrote a new master key to %s: back it up apart from the data directory; "
            "without it nothing stored can be decrypted",
            path,
        )
    return read_key_file(path)


async def ensure_check(bridge: NatsBridge, master: MasterKey) -> None:
    """Write ``master.check`` if absent; fail the start if it names another key."""
    entry = await bridge.kv_get(ENCRYPTION_KEYS, CHECK)
    if entry is None:
        record = await seal_key_record(master, CHECK, _check_key(), int(time.time() * 1000))
        try:
            await bridge.kv_create(ENCRYPTION_KEYS, CHECK, record)
            return
        except KeyExistsError:
            entry = await bridge.kv_get(ENCRYPTION_KEYS, CHECK)
            assert entry is not None
    stored = sealed_by(entry.value)
    if stored != master.key_id:
        raise StartupError(
            f"the stored keys are sealed by master key {stored or '?'}, but this server's "
            f"master key is {master.key_id}: configure the master key that sealed them "
            "(kms.master_key_file, or kms.pkcs11_key_label in its token) "
            "or finish `chatto keys rotate-master`"
        )
    try:
        await open_key_record(master, CHECK, entry.value)
    except aead.DecryptionFailed:
        raise StartupError("the master key check record does not open: it was altered") from None


def _check_key() -> bytes:
    # A fixed 32-byte value: the record proves the key opens what it sealed.
    return (_CHECK_VALUE * 2)[: aead.KEY_BYTES]


async def seal_raw_records(bridge: NatsBridge, master: MasterKey) -> int:
    """Seal each raw key record and erase the raw one; returns how many were sealed.

    Records are independent, so up to ``MIGRATION_CONCURRENCY`` are in flight
    (each is five NATS round trips).
    """
    # Filtered by the server: a store with nothing raw left costs two empty reads.
    names = [n for p in RAW_PREFIXES for n in await bridge.kv_keys(ENCRYPTION_KEYS, p)]
    sealed = 0

    async def one(name: str) -> None:
        nonlocal sealed
        if await _seal_one(bridge, master, name):
            sealed += 1

    await for_each_bounded(names, one, MIGRATION_CONCURRENCY)
    return sealed


async def _seal_one(bridge: NatsBridge, master: MasterKey, name: str) -> bool:
    """Seal ``name`` (if not yet) and erase it; True if this call sealed it."""
    prefix = next(p for p in RAW_PREFIXES if name.startswith(p))
    sealed_name = RAW_PREFIXES[prefix] + name[len(prefix) :]
    entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
    done = False
    if entry is not None and await bridge.kv_get(ENCRYPTION_KEYS, sealed_name) is None:
        key = parse_kek_record(entry.value)
        record = await seal_key_record(master, sealed_name, key, int(time.time() * 1000))
        with contextlib.suppress(KeyExistsError):  # another process sealed it
            await bridge.kv_create(ENCRYPTION_KEYS, sealed_name, record)
            done = True
    await bridge.kv_erase(ENCRYPTION_KEYS, name)
    return done


async def rewrap_all(bridge: NatsBridge, old: MasterKey, new: MasterKey) -> tuple[int, int]:
    """Re-seal every sealed record under ``new``; (re-sealed, already new). Resumable."""
    done = skipped = 0
    names = [n for n in await bridge.kv_keys(ENCRYPTION_KEYS) if n.startswith(SEALED_PREFIXES)]
    # The check record last: until it names the new key, a start with the new
    # key refuses, and nothing runs on a half-rotated store.
    for name in sorted(names, key=lambda n: n == CHECK):
        entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
        if entry is None:
            continue
        if sealed_by(entry.value) == new.key_id:
            skipped += 1
            continue
        key = await open_key_record(old, name, entry.value)
        record = await seal_key_record(new, name, key, int(time.time() * 1000))
        # Compare-and-set: a record shredded meanwhile stays shredded.
        await bridge.kv_update(ENCRYPTION_KEYS, name, record, entry.revision)
        done += 1
    return done, skipped


def rotation_path(config: Config) -> Path:
    """Where ``chatto keys rotate-master`` keeps the new key until it is done."""
    path = config.master_key_path
    return path.with_name(path.name + ".new")
