"""Pinned messages end to end: permissions, live events, the cap, DMs, restarts.

Real HTTP and WebSocket against a real server and NATS.
"""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import trio

from actors.ids import new_id
from actors.rooms.pins import MAX_PINS
from actors.users.actor import CreateUser
from chatto.services import Services
from tests.conftest import AuthEnv, ConfigFactory, NatsProc
from tests.liveclient import live_client
from tests.test_messaging import POST, gql, ok
from tests.test_permissions import people
from tests.test_snapshots import _run

PIN = "mutation($r: ID!, $e: ID!) { pinMessage(roomId: $r, eventId: $e) }"
UNPIN = "mutation($r: ID!, $e: ID!) { unpinMessage(roomId: $r, eventId: $e) }"
PINNED = "query($r: ID!) { room(id: $r) { pinnedMessages { id body author { login } } } }"
PIN_EVENTS = """subscription { myEvents { type roomId eventId userId
  message { id body } } }"""
SETP = 'mutation($s: String!, $sc: String!) { setPermission(subject: $s, scope: $sc, permission: "message.pin", effect: ALLOW) }'
JOIN = "mutation($r: ID!) { joinRoom(roomId: $r) { id } }"


async def post(c: httpx.AsyncClient, token: str, room: str, body: str) -> str:
    return (await ok(c, token, POST, r=room, b=body))["postMessage"]["id"]  # type: ignore[no-any-return]


async def pinned(c: httpx.AsyncClient, token: str, room: str) -> list[str]:
    return [m["id"] for m in (await ok(c, token, PINNED, r=room))["room"]["pinnedMessages"]]


def without_request_id(body: dict[str, Any]) -> dict[str, Any]:
    for error in body.get("errors", ()):
        error.get("extensions", {}).pop("requestId", None)
    return body


def code(body: dict[str, Any]) -> str:
    return str(body["errors"][0]["extensions"]["code"])


async def test_pin_unpin_permissions_and_live_events(auth_env: AuthEnv) -> None:
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "alice", "bob", "eve", "mod")
            (_o, to), (alice, ta), (_b, tb), (eve, te), (mod, tm) = (
                p[n] for n in ("owner", "alice", "bob", "eve", "mod")
            )
            await ok(
                c, to, 'mutation($u: ID!) { assignRole(roleId: "moderator", userId: $u) }', u=mod
            )
            room = (await ok(c, ta, 'mutation { createRoom(name: "team") { id } }'))["createRoom"][
                "id"
            ]
            other = (await ok(c, ta, 'mutation { createRoom(name: "other") { id } }'))[
                "createRoom"
            ]["id"]
            await ok(c, to, SETP, s=f"user:{eve}", sc=f"room:{room}")
            for t in (tb, te):
                await ok(c, t, JOIN, r=room)
            m1, m2 = await post(c, ta, room, "alpha body"), await post(c, ta, room, "second")
            b1 = await post(c, tb, room, "bob's")
            elsewhere = await post(c, ta, other, "elsewhere")
            async with (
                live_client(auth_env.url, tb, PIN_EVENTS) as bob_live,
                live_client(auth_env.url, tm, PIN_EVENTS) as mod_live,
            ):
                # The channel's creator may pin; members hear of it.
                assert (await ok(c, ta, PIN, r=room, e=m1))["pinMessage"] is True
                got = await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_PINNED")
                assert got["roomId"] == room and got["userId"] == alice
                assert got["message"] == {"id": m1, "body": "alpha body"}
                # A room-scope grant works too; pinning twice is a no-op.
                await ok(c, te, PIN, r=room, e=b1)
                await ok(c, te, PIN, r=room, e=b1)
                assert await pinned(c, tb, room) == [b1, m1]  # most recent pin first
                # No permission (a plain member): FORBIDDEN, nothing changes.
                assert code(await gql(c, tb, PIN, r=room, e=m2)) == "FORBIDDEN"
                assert code(await gql(c, tb, UNPIN, r=room, e=m1)) == "FORBIDDEN"
                # Permission but not a member: FORBIDDEN, and no pins shown.
                assert code(await gql(c, tm, PIN, r=room, e=m2)) == "FORBIDDEN"
                outsider = await gql(c, tm, PINNED, r=room)
                assert code(outsider) == "FORBIDDEN" and "alpha body" not in json.dumps(outsider)
                # Banned, with a grant: FORBIDDEN both ways.
                await ok(
                    c,
                    ta,
                    'mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u, reason: "x") }',
                    r=room,
                    u=eve,
                )
                assert code(await gql(c, te, PIN, r=room, e=m2)) == "FORBIDDEN"
                assert code(await gql(c, te, PINNED, r=room)) == "FORBIDDEN"
                # Unknown ids, and ids of another room: NOT_FOUND.
                for e in ("no-such-event", elsewhere):
                    assert code(await gql(c, ta, PIN, r=room, e=e)) == "NOT_FOUND"
                # Unpin: members hear of it.
                await ok(c, ta, UNPIN, r=room, e=m1)
                got = await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_UNPINNED")
                assert got["message"]["id"] == m1 and got["userId"] == alice
                assert await pinned(c, tb, room) == [b1]
                # A retracted message drops out of the pins.
                await ok(
                    c,
                    tb,
                    "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }",
                    r=room,
                    e=b1,
                )
                await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_RETRACTED")
                assert await pinned(c, tb, room) == []
                assert code(await gql(c, ta, PIN, r=room, e=b1)) == "NOT_FOUND"
                # The outsider's stream heard nothing of this room's pins.
                await ok(c, ta, PIN, r=other, e=elsewhere)  # mod is in neither room
                await ok(c, tm, JOIN, r=other)
                await ok(c, ta, UNPIN, r=other, e=elsewhere)
                await mod_live.wait_for(lambda e: e["type"] == "MESSAGE_UNPINNED")
                assert mod_live.of_type("MESSAGE_PINNED") == []
                assert all(e["roomId"] == other for e in mod_live.of_type("MESSAGE_UNPINNED"))


async def test_cap_archive_and_dm_boundary(auth_env: AuthEnv) -> None:
    with trio.fail_after(120):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "alice", "bob")
            (_o, to), (_a, ta), (bob, tb) = p["owner"], p["alice"], p["bob"]
            room = (await ok(c, ta, 'mutation { createRoom(name: "busy") { id } }'))["createRoom"][
                "id"
            ]
            ids = [await post(c, ta, room, f"m{i}") for i in range(MAX_PINS + 1)]
            for mid in ids[:MAX_PINS]:
                await ok(c, ta, PIN, r=room, e=mid)
            full = await gql(c, ta, PIN, r=room, e=ids[-1])
            assert code(full) == "CONFLICT" and str(MAX_PINS) in full["errors"][0]["message"]
            assert len(await pinned(c, ta, room)) == MAX_PINS
            await ok(c, ta, UNPIN, r=room, e=ids[0])
            await ok(c, ta, PIN, r=room, e=ids[-1])
            assert (await pinned(c, ta, room))[0] == ids[-1]
            # Archived rooms are read-only: no pinning.
            await ok(
                c,
                ta,
                "mutation($r: ID!) { archiveRoom(roomId: $r, archived: true) { id } }",
                r=room,
            )
            assert code(await gql(c, ta, UNPIN, r=room, e=ids[-1])) == "FORBIDDEN"

            # A DM: any participant pins; outsiders (the owner too) meet a missing room.
            dm = (
                await ok(
                    c, ta, "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }", u=[bob]
                )
            )["startDM"]["id"]
            secret = await post(c, ta, dm, "dm secret")
            await ok(c, tb, PIN, r=dm, e=secret)
            got = (await ok(c, ta, PINNED, r=dm))["room"]["pinnedMessages"]
            assert got == [{"id": secret, "body": "dm secret", "author": {"login": "alice"}}]
            for query, vars_ in ((PIN, {"e": secret}), (UNPIN, {"e": secret}), (PINNED, {})):
                outsider = without_request_id(await gql(c, to, query, r=dm, **vars_))
                missing = await gql(c, to, query, r="dm-00000000000000000000000000", **vars_)
                missing = without_request_id(missing)
                assert outsider == missing, query
                assert "dm secret" not in json.dumps(outsider)
            assert await pinned(c, ta, dm) == [secret]


async def _user(s: Services, login: str) -> str:
    pw = await s.accounts.hasher.hash("a long enough password")
    uid = new_id()
    done = await s.actors.ask("user", uid, CreateUser(login, login, f"{login}@example.com", pw))
    await s.projector.wait_for(done.last_seq)
    return uid


async def test_pins_survive_restart_snapshot_and_deletion(
    nursery: trio.Nursery,
    nats_server: NatsProc,
    make_config: ConfigFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(120):
        one = await _run(nursery, make_config, nats_server)
        s = one.running.services
        alice, bob = await _user(s, "alice"), await _user(s, "bob")
        room = await s.messaging.create_room(alice, "pins", "", "")
        await s.messaging.join(bob, room.id)
        keep = await s.messaging.post(alice, room.id, "keep me")
        bobs = await s.messaging.post(bob, room.id, "bob's pinned words")
        gone = await s.messaging.post(alice, room.id, "retracted")
        for m in (keep, bobs, gone):
            await s.messaging.pin(alice, room.id, m.id, True)
        await s.messaging.retract(alice, room.id, gone.id, False)
        # Deleting bob retracts his messages: his pin goes, no content stays.
        await s.deleter.request(bob, bob)
        while not s.directory.users[bob].deleted:
            await trio.sleep(0.02)
        await s.projector.wait_for(await s.store.head())
        assert s.messaging.rooms.rooms[room.id].pins == [keep.id]
        assert s.messaging.rooms.messages[bobs.id].body == ""
        await one.stop()  # writes the snapshot

        two = await _run(nursery, make_config, nats_server)
        assert "projector restored from the snapshot" in caplog.text
        s2 = two.running.services
        assert s2.messaging.rooms.rooms[room.id].pins == [keep.id]
        # The actor (reloaded from the stream) agrees: a repeat pin is a no-op.
        head = await s2.store.head()
        await s2.messaging.pin(alice, room.id, keep.id, True)
        assert await s2.store.head() == head
        await s2.messaging.pin(alice, room.id, keep.id, False)
        await two.stop()

        three = await _run(nursery, make_config, nats_server, CHATTO_SNAPSHOTS_ENABLED="false")
        assert three.running.services.messaging.rooms.rooms[room.id].pins == []
        await three.stop()
