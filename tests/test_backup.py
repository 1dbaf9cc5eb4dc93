"""Backups and restores against real NATS, and interop with the age CLI."""

from __future__ import annotations

import gzip
import io
import os
import pty
import shutil
import tarfile
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio

from chatto.backup import archive, commands
from chatto.backup import keys as keys_cmd
from chatto.bus.storage import EVENT_STREAM
from chatto.errors import ChattoError
from chatto.messaging.attachments import Upload
from tests.authflow import bearer, login_token
from tests.conftest import ConfigFactory, start_server
from tests.test_messaging import POST, ok

PW = "a long enough password"
PASS = "correct horse backup staple"


async def populated(nursery: trio.Nursery, config: Any) -> dict[str, Any]:
    handle = await start_server(nursery, config)
    async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
        a = await register_console(c, handle, "ann")
        b = await register_console(c, handle, "ben")
        ta, tb = await login_token(c, "ann", PW), await login_token(c, "ben", PW)
        room = (await ok(c, ta, 'mutation { createRoom(name: "backed") { id } }'))["createRoom"][
            "id"
        ]
        await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
        dm = (
            await ok(c, ta, "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }", p=[b])
        )["startDM"]["id"]
        first = (await ok(c, ta, POST, r=room, b="first words"))["postMessage"]["id"]
        await ok(c, tb, POST, r=room, b="a reply", p=first)
        await ok(c, ta, POST, r=dm, b="private words")
        await ok(
            c,
            tb,
            'mutation($r: ID!, $e: ID!) { react(roomId: $r, eventId: $e, shortcode: "tada") { id } }',
            r=room,
            e=first,
        )
        services = handle.running.services
        upload = Upload("notes.txt", "text/plain", b"attached words")
        att = await services.attachments.upload(a, room, upload)
        await services.messaging.post(a, room, "with a file", attachments=(att.id,))
    return {"handle": handle, "ta": ta, "tb": tb, "room": room, "dm": dm, "ann": a}


async def register_console(c: httpx.AsyncClient, handle: Any, name: str) -> str:
    """Create an account in-process (what /auth/register/complete does, minus the mail)."""
    services = handle.running.services
    from actors.ids import new_id
    from actors.users.actor import CreateUser

    uid = new_id()
    pw_hash = await services.accounts.hasher.hash(PW)
    done = await services.actors.ask(
        "user", uid, CreateUser(name, name, f"{name}@example.com", pw_hash)
    )
    await services.projector.wait_for(done.last_seq)
    claim = services.accounts._claim_key
    await services.accounts.records.create(claim("login", name), {"u": uid})
    await services.accounts.records.create(claim("email", f"{name}@example.com"), {"u": uid})
    await services.messaging.join_seeded(uid)
    return uid


async def snapshot(url: str, token: str, rooms: list[str]) -> list[Any]:
    """Everything a member reads, attachment bytes included."""
    q = "query($r: ID!) { room(id: $r) { name events { events { id body authorId reactions { shortcode count } inReplyTo attachments { name url } } } } }"
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        out: list[Any] = []
        for r in rooms:
            doc = await ok(c, token, q, r=r)
            for ev in doc["room"]["events"]["events"]:
                for att in ev["attachments"]:
                    att["bytes"] = (await c.get(att["url"], headers=bearer(token))).text
            out.append(doc)
        return out


async def test_round_trip_same_and_new_secret(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(CHATTO_AUTH_BCRYPT_COST="4")
    with trio.fail_after(120):
        s = await populated(nursery, config)
        rooms = [s["room"], s["dm"], "general"]
        before = await snapshot(s["handle"].url, s["ta"], rooms)
        assert "attached words" in str(before)
        out = tmp_path / "b.tar.gz.age"
        await commands.backup(config, out, True, True, PASS)  # while the server runs
        assert out.stat().st_mode & 0o777 == 0o600
        with pytest.raises(ChattoError, match="running"):
            await commands.restore(config, out, "error", PASS)
        await s["handle"].stop()
        shutil.rmtree(config.data_dir)
        notes = await commands.restore(config, out, "error", PASS)
        assert notes == []
        again = await start_server(nursery, config)
        assert await snapshot(again.url, s["ta"], rooms) == before  # same token still valid
        await again.stop()
        # A server with another core.secret_key (and the same master key, which
        # sealed the keys in the archive): data reads, credentials do not.
        other = make_config(
            CHATTO_AUTH_BCRYPT_COST="4", CHATTO_KMS_MASTER_KEY_FILE=str(config.master_key_path)
        )
        assert other.data_dir == config.data_dir
        shutil.rmtree(config.data_dir)
        notes = await commands.restore(other, out, "error", PASS)
        assert any("secret_key differs" in n for n in notes)
        third = await start_server(nursery, other)
        async with httpx.AsyncClient(base_url=third.url, timeout=20) as c:
            r = await c.post(
                "/api/graphql", json={"query": "{ viewer { id } }"}, headers=bearer(s["ta"])
            )
            assert r.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            fresh = await login_token(c, "ann", PW)
            # Uniqueness claims were re-created under the new secret at start.
            claimed = third.running.services.accounts._claim_key("login", "ann")
            assert await third.running.services.accounts.records.get(claimed) is not None
        assert await snapshot(third.url, fresh, rooms) == before
        await third.stop()


async def test_backup_without_keys_needs_a_key_import(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(CHATTO_AUTH_BCRYPT_COST="4")
    with trio.fail_after(120):
        s = await populated(nursery, config)
        before = await snapshot(s["handle"].url, s["ta"], [s["room"]])
        data, keys = tmp_path / "data.tar.gz", tmp_path / "keys.age"
        await commands.backup(config, data, False, False, None)
        assert await keys_cmd.keys_export(config, keys, PASS) >= 2
        with tarfile.open(data) as tar:
            assert not any("ENCRYPTION_KEYS" in m.name for m in tar.getmembers())
        await s["handle"].stop()
        shutil.rmtree(config.data_dir)
        notes = await commands.restore(config, data, "error", None)
        assert any("no encryption keys" in n for n in notes)
        blind = await start_server(nursery, config)
        services = blind.running.services
        assert services.directory.find_login("ann") is None  # PII cannot be decrypted
        msgs = [m for m in services.messaging.rooms.messages.values() if m.room_id == s["room"]]
        assert msgs
        for m in msgs:
            assert await services.messaging.keys.open_body(m) is None
        await blind.stop()
        written, skipped = await keys_cmd.keys_import(config, keys, PASS)
        assert written >= 2 and skipped == 0
        assert await keys_cmd.keys_import(config, keys, PASS) == (0, written)  # never overwrites
        seeing = await start_server(nursery, config)
        assert await snapshot(seeing.url, s["ta"], [s["room"]]) == before
        await seeing.stop()


def age_decrypt(path: Path, out: Path, passphrase: str) -> None:
    """Run the standalone age CLI, typing the passphrase into its terminal."""
    pid, fd = pty.fork()
    if pid == 0:  # child
        os.execvp("age", ["age", "-d", "-o", str(out), str(path)])
    buf = b""
    while b"passphrase" not in buf.lower():
        buf += os.read(fd, 1024)
    os.write(fd, passphrase.encode() + b"\n")
    try:
        while os.read(fd, 1024):
            pass
    except OSError:
        pass
    _pid, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0


async def test_age_cli_interop_and_bad_archives(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    if shutil.which("age") is None:
        assert not os.environ.get("CI"), "CI must install Debian's age package (.ci/run does)"
        pytest.skip("the age CLI is not installed here")
    config = make_config(CHATTO_AUTH_BCRYPT_COST="4")
    with trio.fail_after(120):
        s = await populated(nursery, config)
        enc = tmp_path / "b.tar.gz.age"
        await commands.backup(config, enc, True, False, PASS)
        await s["handle"].stop()
    plain = tmp_path / "plain.tar.gz"
    await trio.to_thread.run_sync(age_decrypt, enc, plain, PASS)
    with tarfile.open(plain) as tar:
        names = {m.name for m in tar.getmembers()}
    assert {"manifest.json", f"streams/{EVENT_STREAM}.jsonl"} <= names
    # Bad archives: each a clear error, and nothing written to the target.
    raw = plain.read_bytes()
    tampered = io.BytesIO()
    with (
        tarfile.open(fileobj=io.BytesIO(raw)) as src,
        tarfile.open(fileobj=tampered, mode="w:gz") as dst,
    ):
        for m in src.getmembers():
            data = src.extractfile(m).read()  # type: ignore[union-attr]
            if m.name.startswith("streams/"):
                data = data.replace(b"subject", b"subjekt", 1)
            m.size = len(data)
            dst.addfile(m, io.BytesIO(data))
    cases = {
        "corrupt.tar.gz": b"this is not an archive",
        "truncated.tar.gz": raw[: len(raw) // 2],
        "mismatch.tar.gz": tampered.getvalue(),
        "garbage-gzip.tar.gz": gzip.compress(b"plain text, not tar"),
    }
    shutil.rmtree(config.data_dir)
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(archive.ArchiveError):
            await commands.restore(config, tmp_path / name, "error", None)
    with pytest.raises(archive.ArchiveError, match="wrong passphrase"):
        await commands.restore(config, enc, "error", "not the passphrase")
    assert not config.data_dir.exists(), "a failed restore must write nothing"
