"""The master key inside an HSM (issue #17, ``kms.provider = "pkcs11"``), tested
against Debian's SoftHSM: a whole server registers users and reads back a DM
with its KEKs sealed by a token key; that key cannot be read out of the token;
a copied store meets another token's key and refuses to start; a wrong PIN is
one line without the PIN; posting many messages costs a handful of token
operations (the KMS caches opened KEKs); rotation moves a local key's store
into the HSM and then to another token key."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pkcs11
import pytest
import trio
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag

from actors.kms.actor import Kms
from actors.kms.records import SEALED_KEK, sealed_by
from chatto.backup import hsm as hsm_cmd
from chatto.bus.storage import ENCRYPTION_KEYS
from chatto.config import Config
from chatto.crypto.aead import DecryptionFailed
from chatto.crypto.master import MasterKeyError
from chatto.crypto.pkcs11 import TokenSettings, open_pkcs11_token, read_pin
from chatto.errors import ConfigError
from chatto.initcmd import write_initial_config
from chatto.kms_setup import open_configured_key
from tests.authflow import login_token, register
from tests.conftest import ConfigFactory, start_mail_server, start_server
from tests.softhsm import MODULE, SoftHsm, make_softhsm, softhsm_available
from tests.test_auth_storage import store_bytes
from tests.test_cli import error_line, run_cli
from tests.test_master_key import HISTORY, _fails_to_start, _victim
from tests.test_messaging import POST, ok

TOKEN, THIEF = "chatto", "thief"
PIN = "pin-8d41c7e2"
PW = "a long enough password"
DM_TEXT = "words for ben only"
START_DM = "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }"


@pytest.fixture(scope="session")
def hsm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SoftHsm]:
    """Two SoftHSM tokens for the whole session (SoftHSM only sees tokens that
    exist when this process first loads it)."""
    if not softhsm_available():
        pytest.skip(f"softhsm2 is not installed ({MODULE}); apt-get install softhsm2")
    made = make_softhsm(tmp_path_factory.mktemp("softhsm"), (TOKEN, THIEF), PIN)
    before = os.environ.get("SOFTHSM2_CONF")
    os.environ["SOFTHSM2_CONF"] = str(made.conf)  # read by the module, not by Chatto
    yield made
    if before is None:
        os.environ.pop("SOFTHSM2_CONF", None)
    else:
        os.environ["SOFTHSM2_CONF"] = before


def _env(hsm: SoftHsm, key: str, token: str = TOKEN) -> dict[str, str]:
    return {
        "CHATTO_KMS_PROVIDER": "pkcs11",
        "CHATTO_KMS_PKCS11_TOKEN_LABEL": token,
        "CHATTO_KMS_PKCS11_KEY_LABEL": key,
        "CHATTO_KMS_PKCS11_PIN_FILE": str(hsm.pin_file),
        "CHATTO_AUTH_BCRYPT_COST": "4",
    }


def _settings(hsm: SoftHsm, token: str = TOKEN) -> TokenSettings:
    return TokenSettings(MODULE, token, hsm.pin)


async def _sealed_by(services: Any) -> set[str]:
    bridge = services.bridge
    ids = set()
    for name in await bridge.kv_keys(ENCRYPTION_KEYS):
        entry = await bridge.kv_get(ENCRYPTION_KEYS, name)
        assert entry is not None
        ids.add(sealed_by(entry.value))
    return ids


async def _dm_bodies(url: str, token: str, dm: str) -> list[str]:
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        events = (await ok(c, token, HISTORY, r=dm))["room"]["events"]["events"]
    return [e["body"] for e in events]


async def test_a_server_keeps_its_master_key_in_the_hsm(
    nursery: trio.Nursery,
    make_config: ConfigFactory,
    hsm: SoftHsm,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(120):
        # The operator's way: `chatto keys init-hsm` against the config.
        path = tmp_path / "hsm.toml"
        write_initial_config(path)
        made = run_cli("keys", "init-hsm", "-c", str(path), env={**hsm.env(), **_env(hsm, "dm")})
        assert made.returncode == 0, made.stderr
        key_id = made.stderr.split("(master key ")[1].split(")")[0]
        assert key_id.startswith("p11-") and PIN not in made.stderr

        env = await start_mail_server(nursery, make_config, **_env(hsm, "dm"))
        config: Config = env.server.running.services.config
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            await register(c, env.sink, "ann@example.com", "ann", PW)
            ben = await register(c, env.sink, "ben@example.com", "ben", PW)
            ta = await login_token(c, "ann", PW)
            dm = (await ok(c, ta, START_DM, p=[ben.user["id"]]))["startDM"]["id"]
            await ok(c, ta, POST, r=dm, b=DM_TEXT)
        assert DM_TEXT in await _dm_bodies(env.url, await _login(env.url, "ben"), dm)
        assert await _sealed_by(env.server.running.services) == {key_id}
        await env.server.stop()

        # Cold caches: opened KEKs come from the token once, then from the
        # KMS cache, so many posts cost a handful of token operations.
        handle = await start_server(nursery, config)
        kms = Kms(handle.running.services.actors)
        started = await kms.master_statistics()
        # The check record, then each user's KEK once (the directory opens PII).
        assert started["wraps"] + started["unwraps"] <= 3, started
        posts = 40
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            ta = await login_token(c, "ann", PW)
            for i in range(posts):
                await ok(c, ta, POST, r=dm, b=f"note {i}")
        bodies = await _dm_bodies(handle.url, await _login(handle.url, "ben"), dm)
        assert DM_TEXT in bodies and f"note {posts - 1}" in bodies
        assert await kms.master_statistics() == started  # no token operation per message
        assert started["failed_unwraps"] == 0 and started["sessions_opened"] == 1
        await handle.stop()
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert PIN not in logged and PIN.encode() not in store_bytes(config.nats_store_dir)


async def _login(url: str, name: str) -> str:
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        return await login_token(c, name, PW)


async def test_the_master_key_never_leaves_the_token(hsm: SoftHsm, make_config: Any) -> None:
    with trio.fail_after(30):
        config = make_config(**_env(hsm, "sealed-in"))
        _label, key_id = await hsm_cmd.init_hsm(config, None)
        async with open_pkcs11_token(_settings(hsm)) as token:
            key = await token.master_key("sealed-in")
            assert key.key_id == key_id

            def attributes(k: pkcs11.SecretKey) -> tuple[bool, bool]:
                return k[Attribute.EXTRACTABLE], k[Attribute.SENSITIVE]

            def read_value(k: pkcs11.SecretKey) -> bytes:
                return bytes(k[Attribute.VALUE])

            def wrap_out(k: pkcs11.SecretKey) -> bytes:
                # A session key of our own that may wrap: the token still refuses.
                wrapper = k.session.generate_key(
                    KeyType.AES, 256, capabilities=MechanismFlag.WRAP | MechanismFlag.UNWRAP
                )
                return bytes(wrapper.wrap_key(k, mechanism=Mechanism.AES_KEY_WRAP))

            assert await token.with_key("sealed-in", attributes) == (False, True)
            for attempt, refusal in ((read_value, "AttributeSensitive"), (wrap_out, "KeyUnex")):
                with pytest.raises(MasterKeyError, match=refusal):
                    await token.with_key("sealed-in", attempt)


async def test_a_copied_store_meets_another_hsm_key_and_refuses_to_start(
    nursery: trio.Nursery, make_config: ConfigFactory, hsm: SoftHsm, tmp_path: Path
) -> None:
    with trio.fail_after(120):
        victim = make_config(**_env(hsm, "victim"))
        _label, victim_id = await hsm_cmd.init_hsm(victim, None)
        handle = await start_server(nursery, victim)
        await handle.stop()
        copy = tmp_path / "stolen"
        shutil.copytree(victim.nats_store_dir, copy)
        for token, label in ((THIEF, "victim"), (TOKEN, "another")):
            thief = make_config(CHATTO_NATS_EMBEDDED_STORE_DIR=str(copy), **_env(hsm, label, token))
            _label, thief_id = await hsm_cmd.init_hsm(thief, None)
            message = await _fails_to_start(nursery, thief)
            assert f"sealed by master key {victim_id}" in message and thief_id in message


async def test_a_wrong_pin_is_one_line_without_the_pin(hsm: SoftHsm, tmp_path: Path) -> None:
    path = tmp_path / "chatto.toml"
    write_initial_config(path)
    wrong = "wrong-pin-5150"
    env = {**hsm.env(), **_env(hsm, "any"), "CHATTO_WEBSERVER_PORT": "0"}
    env["CHATTO_KMS_PKCS11_PIN"] = wrong  # wins over the (right) PIN file
    proc = run_cli("run", "-c", str(path), env=env, timeout=60)
    assert proc.returncode == 1
    assert error_line(proc) == f"chatto: error: the PIN for PKCS#11 token '{TOKEN}' is wrong"
    assert wrong not in proc.stderr + proc.stdout and PIN not in proc.stderr + proc.stdout


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"CHATTO_KMS_PKCS11_KEY_LABEL": "absent"}, "no key 'absent' in PKCS#11 token 'chatto'"),
        ({"CHATTO_KMS_PKCS11_TOKEN_LABEL": "nope"}, "no PKCS#11 token labelled 'nope'"),
        ({"CHATTO_KMS_PKCS11_MODULE": "/nonexistent/p11.so"}, "module /nonexistent/p11.so does"),
        ({"CHATTO_KMS_PKCS11_PIN_FILE": ""}, "needs the token's PIN"),
        ({"CHATTO_KMS_PKCS11_KEY_LABEL": "loose"}, "can leave the token"),
    ],
)
async def test_a_missing_or_unsafe_hsm_key_is_one_clear_error(
    hsm: SoftHsm, make_config: ConfigFactory, override: dict[str, str], message: str
) -> None:
    with trio.fail_after(30):
        if override.get("CHATTO_KMS_PKCS11_KEY_LABEL") == "loose":
            await _extractable_key("loose", hsm)
        config = make_config(**{**_env(hsm, "ok"), **override})
        with pytest.raises(MasterKeyError) as caught:
            async with open_configured_key(config, create=False):
                pass
        assert message in caught.value.message and PIN not in caught.value.message


async def _extractable_key(label: str, hsm: SoftHsm) -> None:
    """A key made without init-hsm: readable out of the token."""

    def make() -> None:
        token = pkcs11.lib(MODULE).get_token(token_label=TOKEN)
        try:
            session = token.open(rw=True, user_pin=hsm.pin)
        except pkcs11.exceptions.UserAlreadyLoggedIn:  # a session of this process is open
            session = token.open(rw=True)
        with session:
            if not list(session.get_objects({Attribute.LABEL: label})):
                session.generate_key(
                    KeyType.AES,
                    256,
                    label=label,
                    store=True,
                    template={Attribute.EXTRACTABLE: True},
                )

    await trio.to_thread.run_sync(make)


async def test_sealing_in_the_token_fails_closed_and_survives_a_lost_session(
    hsm: SoftHsm,
) -> None:
    with trio.fail_after(30):
        async with open_pkcs11_token(_settings(hsm), writable=True) as token:
            key = await token.generate_key("unit")
            kek = bytes(range(32))
            sealed = await key.wrap(kek, b"record name")
            assert sealed[0] == 1 and len(sealed) == 1 + 12 + 32 + 16
            assert await key.wrap(kek, b"record name") != sealed  # a fresh IV each time
            assert await key.unwrap(sealed, b"record name") == kek
            tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
            for blob, aad in ((tampered, b"record name"), (sealed, b"other record")):
                with pytest.raises(DecryptionFailed):
                    await key.unwrap(blob, aad)
            for malformed in (sealed[:20], b"\x02" + sealed[1:]):
                with pytest.raises(DecryptionFailed):
                    await key.unwrap(malformed, b"record name")
            # As if the HSM restarted: every session of this process is gone.
            await trio.to_thread.run_sync(pkcs11.lib(MODULE).reinitialize)
            assert await key.unwrap(sealed, b"record name") == kek
            assert key.statistics() == {
                "wraps": 2,
                "unwraps": 4,  # the malformed ones never reach the token
                "failed_unwraps": 2,
                "sessions_opened": 2,
            }
            with pytest.raises(MasterKeyError, match="already holds"):
                await token.generate_key("unit")


async def test_rotation_moves_a_local_store_into_the_hsm_and_on_to_a_new_key(
    nursery: trio.Nursery, make_config: ConfigFactory, hsm: SoftHsm
) -> None:
    with trio.fail_after(180):
        local, s = await _victim(nursery, make_config)
        same_store = {
            "CHATTO_NATS_EMBEDDED_STORE_DIR": str(local.nats_store_dir),
            "CHATTO_KMS_MASTER_KEY_FILE": str(local.master_key_path),
            "CHATTO_CORE_SECRET_KEY": local.core.secret_key,
        }
        moved = make_config(**same_store, **_env(hsm, "rot-a"))
        done, skipped, label, first_id = await hsm_cmd.rotate_to_token(moved, None)
        assert label == "rot-a" and skipped == 0 and done >= 3  # ann, ben, the check record
        handle = await start_server(nursery, moved)
        assert "private words" in await _dm_bodies(handle.url, s["ta"], s["dm"])
        assert await _sealed_by(handle.running.services) == {first_id}
        await handle.stop()
        assert "sealed by master key" in await _fails_to_start(nursery, local)

        done, skipped, label, second_id = await hsm_cmd.rotate_to_token(moved, "rot-b")
        assert label == "rot-b" and second_id != first_id and done >= 3
        again = await hsm_cmd.rotate_to_token(moved, "rot-b")  # resumable: nothing left
        assert again[:2] == (0, done)
        assert "sealed by master key" in await _fails_to_start(nursery, moved)
        rotated = make_config(**same_store, **_env(hsm, "rot-b"))
        handle = await start_server(nursery, rotated)
        assert "private words" in await _dm_bodies(handle.url, s["ta"], s["dm"])
        names = await handle.running.services.bridge.kv_keys(ENCRYPTION_KEYS)
        assert any(n.startswith(SEALED_KEK) for n in names)
        await handle.stop()


def test_pkcs11_settings_are_checked(make_config: ConfigFactory, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="kms.pkcs11_key_label"):
        make_config(CHATTO_KMS_PROVIDER="pkcs11", CHATTO_KMS_PKCS11_KEY_LABEL=" ")
    with pytest.raises(ConfigError, match="at most 32 bytes"):
        make_config(CHATTO_KMS_PROVIDER="pkcs11", CHATTO_KMS_PKCS11_TOKEN_LABEL="t" * 33)
    with pytest.raises(ConfigError, match="kms.provider"):
        make_config(CHATTO_KMS_PROVIDER="hsm")
    pin = tmp_path / "pin"
    pin.write_text("1234\n")
    pin.chmod(0o644)
    with pytest.raises(MasterKeyError, match="readable by others") as caught:
        read_pin(pin, environ={})
    assert "1234" not in caught.value.message
    pin.chmod(0o600)
    assert read_pin(pin, environ={}) == "1234"
    assert read_pin(pin, environ={"CHATTO_KMS_PKCS11_PIN": "5678"}) == "5678"
    with pytest.raises(MasterKeyError, match="CHATTO_KMS_PKCS11_PIN"):
        read_pin(None, environ={})
