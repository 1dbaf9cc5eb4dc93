"""``chatto keys export|import|rotate-master`` and the master-key check of restores.

A key export is for moving to another master key: it opens every sealed KEK
with this server's master key and writes the raw records into an age archive
(the passphrase protects them). An import seals each record with the target's
master key; raw records never reach NATS. A full backup with
``--include-keys`` carries the KEKs still sealed, so its restore needs the
master key that sealed them.
"""

from __future__ import annotations

import base64
import os
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

from actors.kms.records import (
    RAW_KEK,
    RAW_USER_KEY,
    SEALED_KEK,
    SEALED_USER_KEY,
    MasterKey,
    kek_record,
    open_key_record,
    parse_kek_record,
    seal_key_record,
    sealed_by,
)
from chatto import __version__
from chatto.backup import archive
from chatto.backup.commands import (
    get_passphrase,
    load_archive,
    open_store,
    secret_fingerprint,
    write_private,
)
from chatto.backup.progress import Progress, Report
from chatto.bus.bridge import NatsBridge
from chatto.bus.buckets import KeyExistsError
from chatto.bus.storage import ENCRYPTION_KEYS, bootstrap_storage
from chatto.config import Config
from chatto.crypto.master import MasterKeyError, new_master_key, read_key_file, write_key_file
from chatto.errors import StartupError
from chatto.kms_setup import (
    CHECK,
    open_configured_key,
    open_master_key,
    rewrap_all,
    rotation_path,
)

MEMBER = f"kv/{ENCRYPTION_KEYS}.jsonl"
_TO_RAW = {SEALED_KEK: RAW_KEK, SEALED_USER_KEY: RAW_USER_KEY}
_TO_SEALED = {RAW_KEK: SEALED_KEK, RAW_USER_KEY: SEALED_USER_KEY}


def _renamed(name: str, table: dict[str, str]) -> str | None:
    prefix = next((p for p in table if name.startswith(p)), None)
    return None if prefix is None else table[prefix] + name[len(prefix) :]


@asynccontextmanager
async def _open_key(config: Config) -> AsyncIterator[MasterKey | None]:
    """The configured master key (None: no local key file), errors as ``StartupError``."""
    async with AsyncExitStack() as stack:
        try:
            master = await stack.enter_async_context(open_configured_key(config, create=False))
        except MasterKeyError as exc:
            raise StartupError(exc.message) from None
        yield master


async def keys_export(
    config: Config, out: Path, passphrase: str | None, progress: Report | None = None
) -> int:
    """Write every KEK, opened, into an age archive; returns how many."""
    report = progress or Progress()
    records: list[dict[str, Any]] = []
    async with _open_key(config) as master, open_store(config, allow_running=True) as bridge:
        if master is None:
            raise StartupError(f"no master key: {config.master_key_path} does not exist")
        await bootstrap_storage(bridge, config.nats.replicas)
        names = sorted(await bridge.kv_keys(ENCRYPTION_KEYS))
        for i, name in enumerate(names, 1):
            report.step(ENCRYPTION_KEYS, i, len(names))
            raw_name = _renamed(name, _TO_RAW)
            entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
            if entry is None:
                continue
            if raw_name is not None:
                key = await open_key_record(master, name, entry.value)
            elif _renamed(name, _TO_SEALED) is not None:  # not yet sealed (older server)
                raw_name, key = name, parse_kek_record(entry.value)
            else:
                continue
            value = kek_record(key, int(time.time() * 1000))
            records.append({"key": raw_name, "value": base64.b64encode(value).decode()})
    report.finish(ENCRYPTION_KEYS, len(records))
    info = {
        "server_version": __version__,
        "include_keys": True,
        "keys_only": True,
        "secret_fingerprint": secret_fingerprint(config),
    }
    data = archive.build({MEMBER: records}, info)
    write_private(out, archive.encrypt(data, passphrase or get_passphrase(None, confirm=True)))
    return len(records)


async def keys_import(
    config: Config, path: Path, passphrase: str | None, progress: Report | None = None
) -> tuple[int, int]:
    """Seal and store each exported KEK; existing ones are kept. (written, skipped)."""
    report = progress or Progress()
    parsed = load_archive(path, passphrase)
    records = parsed.members.get(MEMBER)
    if records is None:
        raise archive.ArchiveError("this archive holds no encryption keys")
    async with open_store(config, allow_running=True) as bridge:
        await bootstrap_storage(bridge, config.nats.replicas)
        async with open_master_key(config, bridge) as master:
            written = await _seal_imported(bridge, master, records, report)
    report.finish(ENCRYPTION_KEYS, written, f"{len(records) - written} already present")
    return written, len(records) - written


async def _seal_imported(
    bridge: NatsBridge, master: MasterKey, records: list[dict[str, Any]], report: Report
) -> int:
    written = 0
    for i, rec in enumerate(records, 1):
        report.step(ENCRYPTION_KEYS, i, len(records))
        name = _renamed(str(rec["key"]), _TO_SEALED)
        if name is None:
            continue
        key = parse_kek_record(base64.b64decode(rec["value"]))
        if await bridge.kv_get(ENCRYPTION_KEYS, name) is not None:
            continue
        sealed = await seal_key_record(master, name, key, int(time.time() * 1000))
        try:
            await bridge.kv_create(ENCRYPTION_KEYS, name, sealed)
            written += 1
        except KeyExistsError:
            continue
    return written


async def restore_notes(config: Config, members: dict[str, list[dict[str, Any]]]) -> list[str]:
    """Refuse a restore whose keys another master key sealed; notes for the operator."""
    check = next((r for r in members.get(MEMBER, []) if r.get("key") == CHECK), None)
    if check is None:
        return []
    sealed_id = sealed_by(base64.b64decode(check["value"]))
    async with _open_key(config) as master:
        if master is None:
            return [
                f"the archive's keys are sealed by master key {sealed_id}: put that key file "
                f"at {config.master_key_path} before starting the server"
            ]
        if master.key_id != sealed_id:
            raise StartupError(
                f"the archive's keys are sealed by master key {sealed_id}, this server's is "
                f"{master.key_id}: restore with the master key that sealed them (or move keys "
                "with `chatto keys export` and `chatto keys import`)"
            )
    return []


async def rotate_master(config: Config) -> tuple[int, int, Path]:
    """Re-seal every KEK under a new master key; (re-sealed, already done, old key path).

    The new key is written to ``<file>.new`` first and reused if a rotation
    was interrupted; the records are re-sealed one by one (compare-and-set),
    the check record last; then the old key moves to ``<file>.old-<id>`` and
    the new one takes its place. The server must be stopped.
    """
    if config.kms.provider != "local":
        raise StartupError("this rotation is for kms.provider = local (see --new-key-label)")
    if os.environ.get("CHATTO_KMS_MASTER_KEY"):
        raise StartupError("rotate-master works on kms.master_key_file, not on the environment")
    path = config.master_key_path
    new_path = rotation_path(config)
    if not path.exists() and new_path.exists():
        os.replace(new_path, path)  # interrupted between the two renames below
        raise StartupError(f"a finished rotation was completed: {path} is the new key")
    old = read_key_file(path)
    new = read_key_file(new_path)
    if old is None:
        raise StartupError(f"no master key: {path} does not exist")
    if new is None:
        write_key_file(new_path, new_master_key())
        new = read_key_file(new_path)
        assert new is not None
    async with open_store(config, allow_running=False) as bridge:
        await bootstrap_storage(bridge, config.nats.replicas)
        entry = await bridge.kv_get(ENCRYPTION_KEYS, CHECK)
        if entry is not None and sealed_by(entry.value) not in (old.key_id, new.key_id):
            raise StartupError("the stored keys are sealed by neither the old nor the new key")
        done, skipped = await rewrap_all(bridge, old, new)
    old_path = path.with_name(f"{path.name}.old-{old.key_id}")
    os.replace(path, old_path)
    os.replace(new_path, path)
    return done, skipped, old_path
