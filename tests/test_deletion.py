"""Account deletion: retraction, crypto-shredding, revocation, resumption."""

from __future__ import annotations

import base64
from typing import Any

import httpx
import trio

from actors.events import EntityRef
from actors.kms.actor import KeyShredded
from actors.users.actor import StartDeletion
from actors.users.events import (
    BODY_PURPOSE,
    PII_PURPOSE,
    EmailVerified,
    UserDEKGenerated,
    UserRegistered,
)
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE
from chatto.crypto import aad, aead
from chatto.errors import ChattoError
from tests.authflow import bearer, cookie_headers, login_token, register, viewer
from tests.conftest import AuthEnv, start_server
from tests.liveclient import live_client
from tests.test_auth_storage import store_bytes
from tests.test_messaging import POST, ok

PW = "a long enough password"
TEXT = "alice-secret-musings"


async def populate(c: httpx.AsyncClient, env: AuthEnv) -> dict[str, Any]:
    alice = await register(c, env.sink, "alice@example.com", "alice", PW)
    bob = await register(c, env.sink, "bob@example.com", "bob", PW)
    ta, tb = await login_token(c, "alice", PW), await login_token(c, "bob", PW)
    room = (await ok(c, ta, 'mutation { createRoom(name: "club") { id } }'))["createRoom"]["id"]
    await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
    dm = (
        await ok(
            c, ta, "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }", p=[bob.user["id"]]
        )
    )["startDM"]["id"]
    first = (await ok(c, ta, POST, r=room, b=f"{TEXT} one"))["postMessage"]["id"]
    await ok(c, ta, POST, r=room, b=f"{TEXT} thread", t=first)
    await ok(c, ta, POST, r=dm, b=f"{TEXT} in dm")
    await ok(c, ta, POST, r="general", b=f"{TEXT} general")
    await ok(
        c,
        ta,
        'mutation($r: ID!, $e: ID!) { editMessage(roomId: $r, eventId: $e, body: "alice-edited-words") { id } }',
        r=room,
        e=first,
    )
    await ok(c, tb, POST, r=room, b="bob stays readable")
    return {"alice": alice, "bob": bob, "ta": ta, "tb": tb, "room": room, "dm": dm}


async def user_keys(services: Any, user_id: str) -> list[UserDEKGenerated]:
    recs = await services.store.load(EntityRef("user", user_id))
    return [r.envelope.event for r in recs if isinstance(r.envelope.event, UserDEKGenerated)]


async def assert_shredded(services: Any, user_id: str) -> None:
    """Nothing left in NATS opens any of the user's bodies or PII fields."""
    keys = await user_keys(services, user_id)
    assert {k.purpose for k in keys} == {PII_PURPOSE, BODY_PURPOSE}
    for k in keys:
        for name in (f"mkek.{k.kek_ref}", f"kek.{k.kek_ref}"):
            assert await services.bridge.kv_get(ENCRYPTION_KEYS, name) is None
        assert await services.bridge.kv_get(RUNTIME_STATE, f"dek.{k.dek_ref}") is None
        context = aad.dek_wrap_aad(user_id, k.purpose, k.epoch)
        try:
            await services.messaging.keys._kms.unwrap_dek(k.dek_ref, k.kek_ref, context)
            raise AssertionError("a shredded key still unwrapped")
        except KeyShredded:
            pass
    # Try every data key that is left (other users') on the user's sealed PII.
    left: list[bytes] = []
    for other in services.directory.users.values():
        if other.id == user_id or other.deleted:
            continue
        for k in await user_keys(services, other.id):
            ctx = aad.dek_wrap_aad(other.id, k.purpose, k.epoch)
            left.append(await services.messaging.keys._kms.unwrap_dek(k.dek_ref, k.kek_ref, ctx))
    assert left
    for rec in await services.store.load(EntityRef("user", user_id)):
        ev = rec.envelope.event
        blobs = [ev.login_enc, ev.display_name_enc] if isinstance(ev, UserRegistered) else []
        blobs += [ev.email_enc] if isinstance(ev, EmailVerified) else []
        for blob in blobs:
            for key in left:
                for field in ("login", "display_name", "email"):
                    context = aad.pii_aad(rec.envelope.id, user_id, ev.TYPE, field, 1)
                    try:
                        aead.open_sealed(key, base64.urlsafe_b64decode(blob), context)
                        raise AssertionError("PII opened after shredding")
                    except ChattoError:
                        pass


async def test_delete_my_account_shreds_everything(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            s = await populate(c, auth_env)
            alice_id = s["alice"].user["id"]
            async with live_client(auth_env.url, s["tb"]) as bob_live:
                challenge = (
                    await ok(
                        c, s["ta"], "mutation { requestAccountDeletion { token expiresInSeconds } }"
                    )
                )["requestAccountDeletion"]
                assert challenge["expiresInSeconds"] == 900
                wrong = await c.post(
                    "/api/graphql",
                    json={"query": 'mutation { deleteMyAccount(token: "nope") }'},
                    headers=bearer(s["ta"]),
                )
                assert wrong.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
                await ok(
                    c,
                    s["ta"],
                    "mutation($t: String!) { deleteMyAccount(token: $t) }",
                    t=challenge["token"],
                )
                while services.deleter.completed < 1:
                    await trio.sleep(0.05)
                deleted = await bob_live.wait_for(
                    lambda e: e["type"] == "MEMBER_DELETED" and e["roomId"] == s["room"]
                )
                assert deleted["userId"] == alice_id
            # Her credentials are dead; her messages read as retracted; Bob's are intact.
            assert await viewer(c, **bearer(s["ta"])) is None
            assert await viewer(c, **cookie_headers(s["alice"], csrf=False)) is None
            r = await c.post("/auth/login", json={"login": "alice", "password": PW})
            assert r.status_code == 401
            q = "query($r: ID!) { room(id: $r) { events { events { authorId author { login } body retracted } } } }"
            for room in (s["room"], s["dm"], "general"):
                events = (await ok(c, s["tb"], q, r=room))["room"]["events"]["events"]
                mine = [e for e in events if e["authorId"] == alice_id]
                assert mine and all(
                    e["retracted"] and e["body"] is None and e["author"] is None for e in mine
                )
            club = (await ok(c, s["tb"], q, r=s["room"]))["room"]["events"]["events"]
            assert [e["body"] for e in club if not e["retracted"]] == ["bob stays readable"]
            await assert_shredded(services, alice_id)
            # The address and login are free again.
            again = await register(c, auth_env.sink, "alice@example.com", "alice", PW)
            assert again.user["id"] != alice_id
    await auth_env.server.stop()
    blob = store_bytes(services.config.nats_store_dir)
    assert alice_id.encode() in blob
    for text in (TEXT, "alice-edited-words", "alice@example.com"):
        assert text.encode() not in blob, text


async def test_deletion_resumes_after_a_crash(nursery: trio.Nursery, auth_env: AuthEnv) -> None:
    """A process that locked the account and died: the next start finishes the job."""
    services = auth_env.server.running.services
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            s = await populate(c, auth_env)
        alice_id = s["alice"].user["id"]
        # What `request` does before queueing the job; then the process "dies".
        done = await services.actors.ask("user", alice_id, StartDeletion(alice_id))
        await services.projector.wait_for(done.last_seq)
        await auth_env.server.stop()
        assert services.deleter.completed == 0
        restarted = await start_server(nursery, services.config)
        again = restarted.running.services
        while again.deleter.completed < 1:
            await trio.sleep(0.05)
        assert again.directory.get(alice_id) is None
        await assert_shredded(again, alice_id)
        async with httpx.AsyncClient(base_url=restarted.url, timeout=20) as c:
            token = await login_token(c, "bob", PW)
            q = "query($r: ID!) { room(id: $r) { events { events { authorId body } } } }"
            events = (await ok(c, token, q, r=s["room"]))["room"]["events"]["events"]
            assert all(e["body"] is None for e in events if e["authorId"] == alice_id)
            assert "bob stays readable" in [e["body"] for e in events]
        await restarted.stop()


async def test_deletion_killed_midway_is_completed_by_the_next_start(
    nursery: trio.Nursery, auth_env: AuthEnv
) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(120):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            s = await populate(c, auth_env)
        alice_id = s["alice"].user["id"]
        for i in range(300):
            await services.messaging.post(alice_id, s["room"], f"{TEXT} bulk {i}")
        await services.deleter.request(alice_id, alice_id)
        # Let the job get going, then stop everything at once (no grace).
        mine = [m for m in services.messaging.rooms.messages.values() if m.author_id == alice_id]
        while not any(m.retracted for m in mine):
            await trio.sleep(0.001)
        auth_env.server.cancel.cancel()
        await auth_env.server.stopped.wait()
        retracted = sum(m.retracted for m in mine)
        assert 0 < retracted < len(mine), "the stop did not land in the middle of the job"
        assert services.deleter.completed == 0
        restarted = await start_server(nursery, services.config)
        again = restarted.running.services
        while again.deleter.completed < 1:
            await trio.sleep(0.05)
        left = [m for m in again.messaging.rooms.messages.values() if m.author_id == alice_id]
        assert len(left) == len(mine) and all(m.retracted and not m.body for m in left)
        await assert_shredded(again, alice_id)
        await restarted.stop()
    # Bodies retracted before the stop but not yet erased were erased on resume.
    assert TEXT.encode() not in store_bytes(services.config.nats_store_dir)
