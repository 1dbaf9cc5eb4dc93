"""Message bodies at rest: bound to their context, tamper-evident, legacy-readable."""

from __future__ import annotations

import base64
import time
from typing import Any

import httpx
import trio

from actors.events import EntityRef, Envelope
from actors.ids import new_id
from actors.kms.actor import GenerateDek, KmsActor, UnwrapDek
from actors.kms.records import BucketStore
from actors.rooms.events import MessagePosted
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE
from chatto.crypto import aead
from chatto.crypto.master import new_master_key
from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv
from tests.test_auth_storage import store_bytes

PW = "a long enough password"
SENTINEL = "zebra-quokka-sentinel-text"


async def forge(services: Any, room_id: str, author: str, body: str, epoch: int) -> str:
    """Append a MessagePosted straight to the stream, as someone with NATS access could."""
    entity = EntityRef("room", room_id)
    eid = new_id()
    env = Envelope(eid, entity, int(time.time() * 1000), MessagePosted(author, body, epoch))
    seq = (await services.store.append([env], await services.store.last_seq(entity)))[0]
    await services.projector.wait_for(seq)
    return eid


async def bodies(c: httpx.AsyncClient, token: str, room: str) -> dict[str, Any]:
    q = "query($r: ID!) { room(id: $r) { events(limit: 500) { events { id body } } } }"
    r = await c.post(
        "/api/graphql", json={"query": q, "variables": {"r": room}}, headers=bearer(token)
    )
    return r.json()  # type: ignore[no-any-return]


async def test_copied_or_flipped_ciphertext_fails_and_legacy_reads(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            acct = await register(c, auth_env.sink, "crypt@example.com", "crypt", PW)
            uid, token = acct.user["id"], await login_token(c, "crypt", PW)
            original = await services.messaging.post(uid, "general", "original words")
            # The same ciphertext under another event id must not open.
            copied = await forge(services, "general", uid, original.body, original.epoch)
            raw = bytearray(base64.urlsafe_b64decode(original.body))
            raw[-5] ^= 0x01
            flipped = await forge(
                services,
                "general",
                uid,
                base64.urlsafe_b64encode(bytes(raw)).decode(),
                original.epoch,
            )
            # A legacy v1 body under a raw per-user key still reads.
            legacy_key = aead.new_key()
            await services.bridge.kv_put(ENCRYPTION_KEYS, f"user.{uid}", legacy_key)
            legacy_body = base64.urlsafe_b64encode(
                aead.seal_legacy_v1(legacy_key, b"old times")
            ).decode()
            legacy = await forge(services, "general", uid, legacy_body, 0)
            doc = await bodies(c, token, "general")
    by_id = {e["id"]: e["body"] for e in doc["data"]["room"]["events"]["events"]}
    assert by_id[original.id] == "original words"
    assert by_id[copied] is None and by_id[flipped] is None
    assert by_id[legacy] == "old times"
    failed = {
        tuple(e["path"]) for e in doc["errors"] if e["extensions"]["code"] == "DECRYPTION_FAILED"
    }
    assert len(failed) == 2
    assert all("words" not in e["message"] for e in doc["errors"])


async def test_legacy_raw_kek_record_still_unwraps(bridge: Any) -> None:
    keks, deks = BucketStore(bridge, ENCRYPTION_KEYS), BucketStore(bridge, RUNTIME_STATE)
    with trio.fail_after(10):
        await bridge.kv_put(ENCRYPTION_KEYS, "kek.legacyref", aead.new_key())  # raw 32 bytes
        kms = KmsActor(keks, deks, new_master_key())
        handle = await kms.handle(GenerateDek("legacyref", b"ctx"))
        fresh = KmsActor(
            keks, deks, new_master_key()
        )  # empty caches: reads the raw record from NATS
        key = await fresh.handle(UnwrapDek(handle.dek_ref, "legacyref", b"ctx"))
        assert key == await kms.handle(UnwrapDek(handle.dek_ref, "legacyref", b"ctx"))
        assert fresh.statistics()["keks_loaded"] == 1


async def test_store_holds_no_message_text(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            acct = await register(c, auth_env.sink, "scan@example.com", "scanner", PW)
            token = await login_token(c, "scanner", PW)
            post = 'mutation($b: String!) { postMessage(roomId: "general", body: $b) { id body } }'
            r = await c.post(
                "/api/graphql",
                json={"query": post, "variables": {"b": SENTINEL}},
                headers=bearer(token),
            )
            msg = r.json()["data"]["postMessage"]
            assert msg["body"] == SENTINEL
            edit = 'mutation($e: ID!) { editMessage(roomId: "general", eventId: $e, body: "zebra edited text") { id } }'
            await c.post(
                "/api/graphql",
                json={"query": edit, "variables": {"e": msg["id"]}},
                headers=bearer(token),
            )
    assert acct.user["id"]
    await auth_env.server.stop()
    blob = store_bytes(services.config.nats_store_dir)
    assert msg["id"].encode() in blob  # the scan sees the stored events
    for text in (SENTINEL, "zebra edited text", "zebra"):
        assert text.encode() not in blob
