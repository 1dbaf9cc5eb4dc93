"""Room management, presence queries and session termination over HTTP/WS."""

from __future__ import annotations

import datetime
from typing import Any

import httpx
import trio

from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv
from tests.liveclient import live_client
from tests.test_messaging import gql, ok

PW = "a long enough password"


async def two_users(env: AuthEnv, c: httpx.AsyncClient) -> tuple[Any, str, Any, str]:
    a = await register(c, env.sink, "mod@example.com", "mod", PW)
    b = await register(c, env.sink, "member@example.com", "member", PW)
    return a, await login_token(c, "mod", PW), b, await login_token(c, "member", PW)


async def test_ban_archive_groups_and_read_only(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, b, tb = await two_users(auth_env, c)
            room = (await ok(c, ta, 'mutation { createRoom(name: "#mods") { id name } }'))[
                "createRoom"
            ]
            assert room["name"] == "mods"
            await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room["id"])
            ban = "mutation($r: ID!, $u: ID!, $why: String!, $until: String) { banMember(roomId: $r, userId: $u, reason: $why, expiresAt: $until) }"
            no_reason = await gql(c, ta, ban, r=room["id"], u=b.user["id"], why="  ")
            assert no_reason["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            not_mod = await gql(c, tb, ban, r=room["id"], u=b.user["id"], why="x")
            assert not_mod["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            past = (datetime.datetime.now(datetime.UTC) - datetime.timedelta(minutes=1)).isoformat()
            await ok(c, ta, ban, r=room["id"], u=b.user["id"], why="spam", until=past)
            # An expired ban no longer blocks joining; a permanent one does.
            await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room["id"])
            await ok(c, ta, ban, r=room["id"], u=b.user["id"], why="spam again")
            denied = await gql(
                c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room["id"]
            )
            assert "banned" in denied["errors"][0]["message"]
            await ok(
                c,
                ta,
                "mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }",
                r=room["id"],
                u=b.user["id"],
            )
            await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room["id"])
            # Archived rooms refuse new messages and are hidden from the list.
            await ok(
                c,
                ta,
                "mutation($r: ID!) { archiveRoom(roomId: $r, archived: true) { archived } }",
                r=room["id"],
            )
            post = await gql(
                c,
                tb,
                'mutation($r: ID!) { postMessage(roomId: $r, body: "hi") { id } }',
                r=room["id"],
            )
            assert post["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            names = [r["name"] for r in (await ok(c, tb, "{ rooms { name } }"))["rooms"]]
            assert "mods" not in names and "general" in names
            # #announcements is read-only for members.
            ann = await gql(
                c, tb, 'mutation { postMessage(roomId: "announcements", body: "hi") { id } }'
            )
            assert ann["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            long_body = await gql(
                c,
                tb,
                'mutation($b: String!) { postMessage(roomId: "general", body: $b) { id } }',
                b="x" * 10_001,
            )
            assert long_body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            group = await gql(c, tb, 'mutation { createRoomGroup(name: "Teams") { id } }')
            assert group["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_presence_and_session_termination(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, b, tb = await two_users(auth_env, c)
            q = "query($u: [ID!]!) { presence(userIds: $u) { userId status } }"
            status = await ok(c, ta, q, u=[b.user["id"]])
            assert status["presence"][0]["status"] == "OFFLINE"
            async with (
                live_client(auth_env.url, tb) as live_b,
                live_client(auth_env.url, ta) as live_a,
            ):
                status = await ok(c, ta, q, u=[b.user["id"]])
                assert status["presence"][0]["status"] == "ONLINE"  # subscribing set it
                await ok(c, tb, "mutation { setPresence(status: AWAY) }")
                seen = await live_a.wait_for(
                    lambda e: e["type"] == "PRESENCE" and e["presence"] == "AWAY"
                )
                assert seen["userId"] == b.user["id"]
                change = 'mutation($p: String!) { changePassword(currentPassword: $p, newPassword: "another password") { ok } }'
                r = await c.post(
                    "/api/graphql",
                    json={"query": change, "variables": {"p": PW}},
                    headers=bearer(tb),
                )
                assert r.json()["data"]["changePassword"]["ok"]
                await live_b.wait_for(lambda e: e["type"] == "SESSION_TERMINATED")
                while live_b.closed_code is None:
                    await live_b.changed.wait()
                assert live_b.closed_code == 4403
