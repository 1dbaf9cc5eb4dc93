"""Shredding reaches the disk (issue #17): after an account deletion, no file
under the NATS store holds the user's key records, key bytes or the sealed
attachment chunks, after a graceful stop or after ``kill -9`` of nats-server.

A KV delete or purge only marks records; these tests fail unless the key
records and object chunks are overwritten (JetStream secure delete).
"""

from __future__ import annotations

import base64
import os
import signal
from typing import Any

import httpx
import pytest
import trio

from actors.kms.records import open_key_record, parse_dek_record
from chatto.bus.storage import ENCRYPTION_KEYS, OBJECTS, RUNTIME_STATE
from chatto.kms_setup import load_local_key
from chatto.messaging.attachments import attachment_object, avatar_object
from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv
from tests.test_attachments import upload
from tests.test_auth_storage import store_bytes
from tests.test_deletion import user_keys
from tests.test_messaging import POST, ok

PW = "a long enough password"
FILE = b"attachment-plaintext-" + os.urandom(64).hex().encode() * 20
AVATAR = "mutation($f: Upload!) { setAvatar(file: $f) { avatarUrl } }"


async def _set_avatar(c: httpx.AsyncClient, token: str, data: bytes) -> None:
    import json

    operations = json.dumps({"query": AVATAR, "variables": {"f": None}})
    r = await c.post(
        "/api/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
        files={"0": ("me.png", data, "image/png")},
        headers=bearer(token),
    )
    assert "errors" not in r.json(), r.json()


def _forms(secret: bytes) -> list[bytes]:
    """The ways a secret can sit in a file: raw, base64, url-safe base64."""
    return [secret, base64.b64encode(secret), base64.urlsafe_b64encode(secret)]


async def _secrets_of(services: Any, user_id: str, objects: list[str]) -> dict[str, bytes]:
    """Every stored byte string that would let a disk copy read the user's data."""
    bridge = services.bridge
    found: dict[str, bytes] = {}
    master = load_local_key(services.config, create=False)
    assert master is not None
    for k in await user_keys(services, user_id):
        name = f"mkek.{k.kek_ref}"
        kek = await bridge.kv_get(ENCRYPTION_KEYS, name)
        dek = await bridge.kv_get(RUNTIME_STATE, f"dek.{k.dek_ref}")
        assert kek is not None and dek is not None
        found[f"kek record {k.purpose}"] = bytes(kek.value)
        found[f"kek {k.purpose}"] = await open_key_record(master, name, bytes(kek.value))
        found[f"dek record {k.purpose}"] = bytes(dek.value)
        found[f"wrapped dek {k.purpose}"] = parse_dek_record(bytes(dek.value))[1]
    for name in objects:
        blob = await bridge.obj_get(OBJECTS, name)
        assert blob is not None, name
        found[f"object {name}"] = blob[-4096:]  # sealed chunk bytes
    return found


@pytest.mark.parametrize("stop", ["graceful", "kill-9"])
async def test_deleted_account_leaves_no_key_bytes_on_disk(auth_env: AuthEnv, stop: str) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            alice = await register(c, auth_env.sink, "alice@example.com", "alice", PW)
            await register(c, auth_env.sink, "bob@example.com", "bob", PW)
            ta = await login_token(c, "alice", PW)
            alice_id = alice.user["id"]
            room = (await ok(c, ta, 'mutation { createRoom(name: "disk") { id } }'))["createRoom"][
                "id"
            ]
            att = (await upload(c, ta, room, "notes.txt", FILE, "text/plain")).json()["data"][
                "uploadAttachment"
            ]
            post = 'mutation($r: ID!, $a: [ID!]) { postMessage(roomId: $r, body: "file", attachmentIds: $a) { id } }'
            await ok(c, ta, post, r=room, a=[att["id"]])
            await ok(c, ta, POST, r=room, b="words that will be shredded")
            await _set_avatar(c, ta, b"\x89PNG\r\n\x1a\n" + os.urandom(3000))
            secrets = await _secrets_of(
                services,
                alice_id,
                [attachment_object(room, att["id"]), avatar_object(alice_id)],
            )
            challenge = (await ok(c, ta, "mutation { requestAccountDeletion { token } }"))[
                "requestAccountDeletion"
            ]["token"]
            await ok(c, ta, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=challenge)
            while services.deleter.completed < 1:
                await trio.sleep(0.05)
    if stop == "kill-9":
        embedded = services.embedded
        assert embedded is not None and embedded.pid is not None
        os.kill(embedded.pid, signal.SIGKILL)
        await trio.sleep(0.2)
        blob = store_bytes(services.config.nats_store_dir)
        await auth_env.server.stop()
    else:
        await auth_env.server.stop()
        blob = store_bytes(services.config.nats_store_dir)
    assert alice_id.encode() in blob  # the scan reads the store (her id is in events)
    left = [name for name, secret in secrets.items() if any(f in blob for f in _forms(secret))]
    assert left == []
    assert FILE not in blob
