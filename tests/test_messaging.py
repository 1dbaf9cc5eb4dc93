"""Rooms, messages and live events end to end: real HTTP, WebSocket, NATS."""

from __future__ import annotations

from typing import Any

import httpx
import trio

from tests.authflow import bearer, login_token, register
from tests.conftest import OWNER_EMAIL, AuthEnv
from tests.liveclient import live_client

PW = "a long enough password"


async def gql(c: httpx.AsyncClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    r = await c.post(
        "/api/graphql", json={"query": query, "variables": variables}, headers=bearer(token)
    )
    return r.json()  # type: ignore[no-any-return]


async def ok(c: httpx.AsyncClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    body = await gql(c, token, query, **variables)
    assert "errors" not in body, body
    return body["data"]  # type: ignore[no-any-return]


async def users(env: AuthEnv, c: httpx.AsyncClient) -> dict[str, tuple[str, str]]:
    """alice, bob and carol (carol is an owner); name -> (user id, token)."""
    out = {}
    for name, email in (
        ("alice", "alice@example.com"),
        ("bob", "bob@example.com"),
        ("carol", OWNER_EMAIL),
    ):
        acct = await register(c, env.sink, email, name, PW)
        out[name] = (acct.user["id"], await login_token(c, name, PW))
    return out


POST = "mutation($r: ID!, $b: String!, $t: ID, $p: ID) { postMessage(roomId: $r, body: $b, threadRootEventId: $t, inReplyTo: $p) { id body } }"


async def test_room_chat_arrives_live_to_members_only(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            rooms = await ok(c, ta, "{ myRooms { name } }")
            assert {r["name"] for r in rooms["myRooms"]} == {"general", "announcements"}
            room = (await ok(c, ta, 'mutation { createRoom(name: "team") { id } }'))["createRoom"][
                "id"
            ]
            async with (
                live_client(auth_env.url, tb) as bob_live,
                live_client(auth_env.url, tc) as carol_live,
            ):
                await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { isMember } }", r=room)
                await bob_live.wait_for(
                    lambda e: e["type"] == "MEMBER_JOINED" and e["roomId"] == room
                )
                msg = (await ok(c, ta, POST, r=room, b="hello bob"))["postMessage"]
                got = await bob_live.wait_for(
                    lambda e: e["type"] == "MESSAGE_POSTED" and e["roomId"] == room
                )
                assert got["message"]["body"] == "hello bob" and got["userId"] == alice
                # Thread reply, reply, edit, reaction, typing, retraction.
                reply = (await ok(c, tb, POST, r=room, b="in thread", t=msg["id"]))["postMessage"]
                await ok(c, ta, POST, r=room, b="quoting", p=msg["id"])
                await ok(
                    c,
                    ta,
                    'mutation($r: ID!, $e: ID!) { editMessage(roomId: $r, eventId: $e, body: "hello bob!") { body } }',
                    r=room,
                    e=msg["id"],
                )
                await ok(
                    c,
                    tb,
                    'mutation($r: ID!, $e: ID!) { react(roomId: $r, eventId: $e, shortcode: "thumbsup") { id } }',
                    r=room,
                    e=msg["id"],
                )
                await ok(c, ta, "mutation($r: ID!) { setTyping(roomId: $r, typing: true) }", r=room)
                await bob_live.wait_for(lambda e: e["type"] == "TYPING" and e["userId"] == alice)
                edited = await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_EDITED")
                assert edited["message"]["body"] == "hello bob!"
                reacted = await bob_live.wait_for(lambda e: e["type"] == "REACTION_CHANGED")
                assert reacted["reaction"] == "thumbsup" and reacted["added"] is True
                threaded = await bob_live.wait_for(
                    lambda e: e["type"] == "MESSAGE_POSTED" and e["eventId"] == reply["id"]
                )
                assert threaded["message"]["threadRootId"] == msg["id"]
                await ok(
                    c,
                    ta,
                    "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }",
                    r=room,
                    e=reply["id"],
                )
                retracted = await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_RETRACTED")
                assert (
                    retracted["message"]["retracted"] is True
                    and retracted["message"]["body"] is None
                )
                # Carol is not a member: nothing of the room reached her.
                assert not [e for e in carol_live.events if e.get("roomId") == room]
                # Read markers.
                await ok(
                    c,
                    tb,
                    "mutation($r: ID!, $e: ID!) { markRead(roomId: $r, eventId: $e) }",
                    r=room,
                    e=msg["id"],
                )
                marker = await ok(c, tb, "query($r: ID!) { room(id: $r) { readMarker } }", r=room)
                assert marker["room"]["readMarker"] == msg["id"]
                # Leaving stops delivery at once, without reconnecting.
                await ok(c, tb, "mutation($r: ID!) { leaveRoom(roomId: $r) }", r=room)
                await bob_live.wait_for(lambda e: e["type"] == "MEMBER_LEFT" and e["userId"] == bob)
                before = len(bob_live.of_type("MESSAGE_POSTED", room))
                await ok(c, ta, POST, r=room, b="after bob left")
                await ok(c, ta, POST, r="general", b="ping general")
                await bob_live.wait_for(
                    lambda e: e["type"] == "MESSAGE_POSTED" and e["roomId"] == "general"
                )
                assert len(bob_live.of_type("MESSAGE_POSTED", room)) == before
            page = await ok(
                c,
                ta,
                "query($r: ID!) { room(id: $r) { events { events { body retracted threadRootId } } } }",
                r=room,
            )
            bodies = [(e["body"], e["retracted"]) for e in page["room"]["events"]["events"]]
            assert bodies == [("hello bob!", False), ("quoting", False), ("after bob left", False)]
            thread = await ok(
                c,
                ta,
                "query($r: ID!, $t: ID!) { room(id: $r) { events(threadRootId: $t) { events { body retracted } } } }",
                r=room,
                t=msg["id"],
            )
            assert thread["room"]["events"]["events"] == [{"body": None, "retracted": True}]
            denied = await gql(
                c, tc, "query($r: ID!) { room(id: $r) { events { events { body } } } }", r=room
            )
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_dm_is_private_even_from_an_owner(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            start = "mutation($p: [ID!]!) { startDM(participantIds: $p) { id kind name } }"
            dm = (await ok(c, ta, start, p=[bob]))["startDM"]
            assert dm["kind"] == "DM" and dm["name"] == "alice, bob"
            again = (await ok(c, tb, start, p=[alice]))["startDM"]
            assert again["id"] == dm["id"]
            too_many = await gql(c, ta, start, p=[f"u{i}" for i in range(10)])
            assert too_many["errors"]
            async with (
                live_client(auth_env.url, tb) as bob_live,
                live_client(auth_env.url, tc) as carol_live,
            ):
                await ok(c, ta, POST, r=dm["id"], b="secret plans")
                got = await bob_live.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                assert got["message"]["body"] == "secret plans"
                await ok(c, ta, POST, r="general", b="public words")
                await carol_live.wait_for(
                    lambda e: e.get("roomId") == "general" and e["type"] == "MESSAGE_POSTED"
                )
                assert not [e for e in carol_live.events if e.get("roomId") == dm["id"]]
            # The owner cannot see, join, read or moderate the DM.
            assert (await ok(c, tc, "query($r: ID!) { room(id: $r) { id } }", r=dm["id"]))[
                "room"
            ] is None
            for q in (
                "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
                "mutation($r: ID!) { archiveRoom(roomId: $r, archived: true) { id } }",
                'mutation($r: ID!) { postMessage(roomId: $r, body: "x") { id } }',
            ):
                body = await gql(c, tc, q, r=dm["id"])
                assert body["errors"][0]["extensions"]["code"] in ("FORBIDDEN", "NOT_FOUND"), body


async def test_pagination_both_ways_without_gaps(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(120):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=30) as c:
            acct = await register(c, auth_env.sink, "pager@example.com", "pager", PW)
            token = await login_token(c, "pager", PW)
            room = (await ok(c, token, 'mutation { createRoom(name: "history") { id } }'))[
                "createRoom"
            ]["id"]
            for i in range(1200):
                await services.messaging.post(acct.user["id"], room, f"m{i}")
            q = "query($r: ID!, $b: String, $a: String, $l: Int) { room(id: $r) { events(before: $b, after: $a, limit: $l) { events { body } hasOlder hasNewer startCursor endCursor } } }"
            seen: list[str] = []
            cursor = None
            while True:  # newest to oldest
                page = (await ok(c, token, q, r=room, b=cursor, l=100))["room"]["events"]
                seen = [e["body"] for e in page["events"]] + seen
                if not page["hasOlder"]:
                    break
                cursor = page["startCursor"]
            assert seen == [f"m{i}" for i in range(1200)]
            forward: list[str] = []
            cursor = None
            first = (await ok(c, token, q, r=room, b=None, l=10_000))["room"]["events"]
            assert len(first["events"]) == 500 and first["hasOlder"] and not first["hasNewer"]
            page = {"endCursor": None, "hasNewer": True}
            oldest = (await ok(c, token, q, r=room, l=1))["room"]["events"]
            cursor = None
            while True:  # oldest to newest, starting before the first event
                page = (await ok(c, token, q, r=room, a=cursor or "czow", l=250))["room"]["events"]
                forward += [e["body"] for e in page["events"]]
                if not page["hasNewer"]:
                    break
                cursor = page["endCursor"]
            assert forward == seen
            assert oldest["events"][0]["body"] == "m1199"
            bad = await gql(c, token, q, r=room, b="not-a-cursor")
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
