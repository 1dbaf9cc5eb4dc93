"""The data directory alone decrypts nothing (issue #17): KEKs are sealed by a
master key that never enters NATS. Attacked with a copy of the NATS store on
a fresh server (another master key, none, the check record removed), then
read back with the right key; older raw KEKs are sealed at start and erased."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from actors.kms.records import RAW_KEK, SEALED_KEK, open_key_record, seal_key_record, sealed_by
from chatto.backup import commands
from chatto.backup import keys as keys_cmd
from chatto.backup.commands import open_store
from chatto.bus.storage import ENCRYPTION_KEYS
from chatto.config import Config
from chatto.crypto import aead
from chatto.crypto.master import new_master_key, read_key_file, write_key_file
from chatto.errors import StartupError
from chatto.kms_setup import CHECK, load_local_key, rotation_path
from tests.authflow import bearer, login_token
from tests.conftest import ConfigFactory, start_mail_server, start_server
from tests.test_auth_storage import store_bytes
from tests.test_backup import PW, populated
from tests.test_messaging import ok

DM_TEXT = "private words"
HISTORY = "query($r: ID!) { room(id: $r) { events { events { body } } } }"


async def _victim(nursery: trio.Nursery, make_config: ConfigFactory) -> tuple[Config, Any]:
    config = make_config(CHATTO_AUTH_BCRYPT_COST="4")
    s = await populated(nursery, config)
    await s["handle"].stop()
    return config, s


async def _fails_to_start(nursery: trio.Nursery, config: Config) -> str:
    with pytest.raises(BaseException) as caught:
        await start_server(nursery, config)
    errors = [caught.value]
    while errors and isinstance(errors[0], BaseExceptionGroup):
        errors = list(errors[0].exceptions)
    assert isinstance(errors[0], StartupError), caught.value
    return errors[0].message


async def test_a_copied_store_opens_nothing_without_its_master_key(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    with trio.fail_after(120):
        victim, s = await _victim(nursery, make_config)
        copy = tmp_path / "stolen"
        shutil.copytree(victim.nats_store_dir, copy)
        master = load_local_key(victim, create=False)
        assert master is not None

        # A fresh `chatto init` on the copy: another master key.
        thief = make_config(CHATTO_NATS_EMBEDDED_STORE_DIR=str(copy))
        message = await _fails_to_start(nursery, thief)
        assert master.key_id in message and "sealed by master key" in message
        # No master key at all.
        thief.master_key_path.unlink()
        message = await _fails_to_start(nursery, thief)
        assert "no master key" in message and master.key_id in message

        # The thief deletes the check record and starts with their own key:
        # the server runs, but nothing of the victim's opens or leaks.
        shutil.rmtree(copy)
        shutil.copytree(victim.nats_store_dir, copy)
        thief = make_config(CHATTO_NATS_EMBEDDED_STORE_DIR=str(copy))
        async with open_store(thief, allow_running=False) as bridge:
            assert await bridge.kv_erase(ENCRYPTION_KEYS, CHECK) == 1
        env = await start_mail_server(
            nursery,
            make_config,
            CHATTO_NATS_EMBEDDED_STORE_DIR=str(copy),
            CHATTO_KMS_MASTER_KEY_FILE=str(thief.master_key_path),
        )
        services = env.server.running.services
        assert services.directory.find_login("ann") is None  # PII stays sealed
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            r = await c.post("/auth/forgot-password", json={"email": "ann@example.com"})
            assert r.status_code < 500
            r = await c.post("/auth/login", json={"login": "ann", "password": PW})
            assert r.status_code == 401
        await trio.sleep(0.5)
        assert env.sink.messages == []  # no reset link was mailed to anyone
        thief_key = load_local_key(thief, create=False)
        assert thief_key is not None
        for name in await services.bridge.kv_keys(ENCRYPTION_KEYS):
            assert not name.startswith(RAW_KEK)
            entry = await services.bridge.kv_get(ENCRYPTION_KEYS, name)
            assert entry is not None
            if name.startswith(SEALED_KEK):
                assert sealed_by(entry.value) == master.key_id
                with pytest.raises(aead.DecryptionFailed):
                    await open_key_record(thief_key, name, entry.value)
        await env.server.stop()

        # The owner with the right key reads everything back from the copy.
        shutil.rmtree(copy)
        shutil.copytree(victim.nats_store_dir, copy)
        owner = make_config(
            CHATTO_NATS_EMBEDDED_STORE_DIR=str(copy),
            CHATTO_KMS_MASTER_KEY_FILE=str(victim.master_key_path),
            CHATTO_CORE_SECRET_KEY=victim.core.secret_key,
        )
        handle = await start_server(nursery, owner)
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            token = await login_token(c, "ann", PW)
            bodies = (await ok(c, token, HISTORY, r=s["dm"]))["room"]["events"]["events"]
            assert DM_TEXT in [e["body"] for e in bodies]
        await handle.stop()


async def test_raw_keks_of_an_older_server_are_sealed_and_erased_at_start(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    """An older deployment stored KEKs raw: the first start seals each one and
    overwrites the raw record on disk; a half-done migration is finished."""
    with trio.fail_after(120):
        config, s = await _victim(nursery, make_config)
        handle = await start_server(nursery, config)
        services = handle.running.services
        bridge = services.bridge
        master = load_local_key(config, create=False)
        assert master is not None
        raw_keys: list[bytes] = []
        names = [n for n in await bridge.kv_keys(ENCRYPTION_KEYS) if n.startswith(SEALED_KEK)]
        for i, name in enumerate(names):
            entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
            assert entry is not None
            key = await open_key_record(master, name, entry.value)
            raw_keys.append(key)
            await bridge.kv_put(ENCRYPTION_KEYS, RAW_KEK + name[len(SEALED_KEK) :], key)
            if i % 2 == 0:  # the rest: as if a migration died after sealing them
                await bridge.kv_erase(ENCRYPTION_KEYS, name)
        await bridge.kv_erase(ENCRYPTION_KEYS, CHECK)
        await handle.stop()
        assert any(k in store_bytes(config.nats_store_dir) for k in raw_keys)

        handle = await start_server(nursery, config)
        bridge = handle.running.services.bridge
        left = await bridge.kv_keys(ENCRYPTION_KEYS)
        assert not [n for n in left if n.startswith(RAW_KEK)]
        assert sorted(n for n in left if n.startswith(SEALED_KEK)) == sorted(names)
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            bodies = (await ok(c, s["ta"], HISTORY, r=s["dm"]))["room"]["events"]["events"]
            assert DM_TEXT in [e["body"] for e in bodies]
            r = await c.post("/api/graphql", json={"query": "{ viewer { login } }"}, **_auth(s))
            assert r.json()["data"]["viewer"]["login"] == "ann"
        await handle.stop()
        blob = store_bytes(config.nats_store_dir)
        for key in raw_keys:
            assert key not in blob and base64.b64encode(key) not in blob


def _auth(s: dict[str, Any]) -> dict[str, Any]:
    return {"headers": bearer(s["ta"])}


async def test_rotate_master_reseals_everything_and_resumes(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    with trio.fail_after(120):
        config, s = await _victim(nursery, make_config)
        old = load_local_key(config, create=False)
        assert old is not None
        # An interrupted rotation: the new key was written and one record re-sealed.
        new_path = rotation_path(config)
        write_key_file(new_path, new_master_key())
        new = read_key_file(new_path)
        assert new is not None
        async with open_store(config, allow_running=False) as bridge:
            name = next(
                n for n in await bridge.kv_keys(ENCRYPTION_KEYS) if n.startswith(SEALED_KEK)
            )
            entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
            assert entry is not None
            key = await open_key_record(old, name, entry.value)
            await bridge.kv_put(ENCRYPTION_KEYS, name, await seal_key_record(new, name, key, 0))
        done, skipped, old_path = await keys_cmd.rotate_master(config)
        assert skipped == 1 and done >= 2  # the rest, and the check record
        assert read_key_file(config.master_key_path).key_id == new.key_id  # type: ignore[union-attr]
        assert read_key_file(old_path).key_id == old.key_id  # type: ignore[union-attr]
        assert not new_path.exists()
        handle = await start_server(nursery, config)
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            bodies = (await ok(c, s["ta"], HISTORY, r=s["dm"]))["room"]["events"]["events"]
            assert DM_TEXT in [e["body"] for e in bodies]
        await handle.stop()
        stale = make_config(
            CHATTO_NATS_EMBEDDED_STORE_DIR=str(config.nats_store_dir),
            CHATTO_KMS_MASTER_KEY_FILE=str(old_path),
        )
        assert "sealed by master key" in await _fails_to_start(nursery, stale)


async def test_keys_move_to_another_master_key_through_an_export(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    with trio.fail_after(120):
        config, s = await _victim(nursery, make_config)
        data, keys = tmp_path / "data.tar.gz", tmp_path / "keys.age"
        await commands.backup(config, data, False, False, None)
        assert await keys_cmd.keys_export(config, keys, "a passphrase") == 2  # ann, ben
        elsewhere = make_config(
            CHATTO_NATS_EMBEDDED_STORE_DIR=str(tmp_path / "elsewhere"),
            CHATTO_CORE_SECRET_KEY=config.core.secret_key,
        )
        await commands.restore(elsewhere, data, "error", None)
        written, _ = await keys_cmd.keys_import(elsewhere, keys, "a passphrase")
        assert written == 2
        async with open_store(elsewhere, allow_running=False) as bridge:
            names = await bridge.kv_keys(ENCRYPTION_KEYS)
            assert names and not [n for n in names if n.startswith(RAW_KEK)]
        handle = await start_server(nursery, elsewhere)
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            bodies = (await ok(c, s["ta"], HISTORY, r=s["dm"]))["room"]["events"]["events"]
            assert DM_TEXT in [e["body"] for e in bodies]
        await handle.stop()
        # A full backup with its keys needs the master key that sealed them.
        full = tmp_path / "full.tar.gz.age"
        await commands.backup(config, full, True, True, "a passphrase")
        other = make_config(CHATTO_NATS_EMBEDDED_STORE_DIR=str(tmp_path / "other"))
        with pytest.raises(StartupError, match="sealed by master key"):
            await commands.restore(other, full, "error", "a passphrase")
