"""Every way a credential ends reaches open WebSockets (issue #16, item 4).

Attacks from outside over real HTTP and WebSocket: a client keeps a
``myEvents`` socket open, its credential ends (revoked, logged out, cookie
logout, expired, password changed), another user posts: the socket must
get no body posted after the end, say SESSION_TERMINATED as its last event
and be closed with 4403. Room-scoped ends (ban, leave) stop that room's
events but keep the socket. The race tests consume an in-process stream
only after the end happened, so the end meets events already queued for
the socket. Assertions are on the order of events; ``fail_after`` bounds
are generous and only stop a broken run. The races are in
``test_credential_end_races.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from chatto.initcmd import render_initial_config
from tests.authflow import Account, bearer, cookie_headers, login_token, register
from tests.conftest import OWNER_EMAIL, AuthEnv, ConfigFactory, NatsProc, start_mail_server
from tests.liveclient import LiveClient, live_client
from tests.natscluster import ChattoProc, set_keys
from tests.smtp_sink import SmtpSink
from tests.test_messaging import gql, ok

PW = "a long enough password"
POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
TYPING = "mutation($r: ID!) { setTyping(roomId: $r, typing: true) }"
HISTORY = "query($r: ID!) { room(id: $r) { events { events { body } } } }"
# Five seconds: long enough to log in, subscribe and receive one message first.
SHORT_TTL_DAYS = "0.0000580"


async def two_users(sink: SmtpSink, c: httpx.AsyncClient) -> tuple[str, Account, str]:
    """(poster's token, the victim's cookie account, the victim's token)."""
    await register(c, sink, "poster@example.com", "poster", PW)
    victim = await register(c, sink, "victim@example.com", "victim", PW)
    return await login_token(c, "poster", PW), victim, await login_token(c, "victim", PW)


async def post(c: httpx.AsyncClient, token: str, body: str, room: str = "general") -> None:
    await ok(c, token, POST, r=room, b=body)


def bodies(live: LiveClient) -> list[str]:
    return [e["message"]["body"] for e in live.of_type("MESSAGE_POSTED") if e["message"]]


async def wait_closed(live: LiveClient) -> int:
    while live.closed_code is None:
        live.changed = trio.Event()
        await live.changed.wait()
    return live.closed_code


def assert_terminated(live: LiveClient, before: str, after: str) -> None:
    """Saw ``before``, then SESSION_TERMINATED as the last word, never ``after``; 4403."""
    assert before in bodies(live)
    assert after not in bodies(live), live.events
    assert live.events[-1]["type"] == "SESSION_TERMINATED", live.events[-3:]
    assert live.closed_code == 4403


@asynccontextmanager
async def query_socket(url: str, token: str) -> AsyncIterator[WebSocketConnection]:
    """A socket that ran one query and holds no subscription."""
    ws_url = url.replace("http://", "ws://") + "/api/graphql"
    async with open_websocket_url(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send_message(json.dumps(init))
        assert json.loads(await ws.get_message())["type"] == "connection_ack"
        sub = {"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}}
        await ws.send_message(json.dumps(sub))
        assert json.loads(await ws.get_message())["payload"]["data"]["viewer"]["id"]
        assert json.loads(await ws.get_message())["type"] == "complete"
        yield ws


async def closed_code(ws: WebSocketConnection) -> int:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    return int(info.value.reason.code)


@pytest.mark.parametrize("how", ["revoke-token", "logout"])
async def test_revoked_or_logged_out_token_ends_its_sockets(auth_env: AuthEnv, how: str) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, _victim, tb = await two_users(auth_env.sink, c)
            other = await login_token(c, "victim", PW)  # a second token stays valid
            async with (
                live_client(auth_env.url, tb) as live,
                live_client(auth_env.url, other) as kept,
                query_socket(auth_env.url, tb) as quiet,
            ):
                await post(c, ta, "before")
                await live.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                if how == "revoke-token":
                    r = await c.post("/auth/revoke-token", json={"token": tb})
                else:
                    r = await c.post("/auth/logout", json={}, headers=bearer(tb))
                assert r.status_code == 200
                await post(c, ta, "after")
                await wait_closed(live)
                assert_terminated(live, "before", "after")
                # A socket without myEvents is closed too, with the same code.
                assert await closed_code(quiet) == 4403
                # Only that credential ended: the same user's other token lives on.
                await kept.wait_for(lambda e: e["type"] == "MESSAGE_POSTED" and _body(e) == "after")
                assert kept.closed_code is None


def _body(event: dict[str, Any]) -> str | None:
    return (event.get("message") or {}).get("body")


async def test_cookie_logout_ends_the_cookie_socket(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, victim, _tb = await two_users(auth_env.sink, c)
            async with live_client(auth_env.url, "", cookie=victim.cookie) as live:
                await post(c, ta, "before")
                await live.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                r = await c.post("/auth/logout", json={}, headers=cookie_headers(victim))
                assert r.status_code == 200
                await post(c, ta, "after")
                await wait_closed(live)
                assert_terminated(live, "before", "after")


async def test_expired_session_ends_its_socket(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(nursery, make_config, CHATTO_AUTH_SESSION_TTL_DAYS=SHORT_TTL_DAYS)
    assert env.server.running.services.authn.sessions.ttl_seconds == 5
    # The wait for the expiry outlasts the server's 5 s keep-alive: idle
    # connections go first, so the next login never races the server closing one.
    limits = httpx.Limits(keepalive_expiry=2.0)
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20, limits=limits) as c:
            await register(c, env.sink, "poster@example.com", "poster", PW)
            await register(c, env.sink, "victim@example.com", "victim", PW)
            tb = await login_token(c, "victim", PW)
            ta = await login_token(c, "poster", PW)
            async with live_client(env.url, tb) as live:
                await post(c, ta, "before")
                await live.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                # Nobody uses the token again: its record expires in NATS, and
                # the socket must notice without any request.
                await wait_closed(live)
                ta = await login_token(c, "poster", PW)
                await post(c, ta, "after")
                assert_terminated(live, "before", "after")
                assert env.server.running.services.credentials.statistics().expiry_checks >= 1
    await env.server.stop()


async def test_cookie_rotation_hands_the_socket_to_the_new_session(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    """Near its end a cookie is rotated (old session revoked): its socket must follow.

    Also: opening a WebSocket late in a cookie's life used to rotate the
    cookie there, where no Set-Cookie can reach the browser, and revoke the
    one the browser holds.
    """
    env = await start_mail_server(nursery, make_config, CHATTO_AUTH_SESSION_TTL_DAYS="0.0000984")
    assert env.server.running.services.authn.sessions.ttl_seconds == 8
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            await register(c, env.sink, "poster@example.com", "poster", PW)
            victim = await register(c, env.sink, "victim@example.com", "victim", PW)
            await trio.sleep(6.2)  # past three quarters of the cookie's 8 s life
            async with live_client(env.url, "", cookie=victim.cookie) as live:
                r = await c.post(
                    "/api/graphql",
                    json={"query": "{ viewer { id } }"},
                    headers=cookie_headers(victim, csrf=False),
                )
                assert r.json()["data"]["viewer"], "the socket revoked the browser's cookie"
                assert "chatto_session=" in r.headers.get("set-cookie", "")  # rotated here
                await post(c, await login_token(c, "poster", PW), "after rotation")
                await live.wait_for(lambda e: _body(e) == "after rotation")
                assert live.closed_code is None
                # It now lives as long as the new session: nobody uses it, it expires.
                assert await wait_closed(live) == 4403
                assert live.events[-1]["type"] == "SESSION_TERMINATED"
    await env.server.stop()


async def test_password_change_ends_query_only_sockets_too(auth_env: AuthEnv) -> None:
    """A socket with no live stream kept answering as the user after a password change."""
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _ta, victim, tb = await two_users(auth_env.sink, c)
            async with query_socket(auth_env.url, tb) as quiet:
                r = await c.post(
                    "/auth/change-password",
                    json={"currentPassword": PW, "newPassword": "another long password"},
                    headers=cookie_headers(victim),
                )
                assert r.status_code == 200, r.text
                assert await closed_code(quiet) == 4403


async def room_with_victim(c: httpx.AsyncClient, ta: str, tb: str) -> str:
    room = (await ok(c, ta, 'mutation { createRoom(name: "side") { id } }'))["createRoom"]["id"]
    await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
    return str(room)


async def lose_room(c: httpx.AsyncClient, how: str, ta: str, tb: str, room: str, uid: str) -> None:
    if how == "ban":
        ban = 'mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u, reason: "x") }'
        await ok(c, ta, ban, r=room, u=uid)
    else:
        await ok(c, tb, "mutation($r: ID!) { leaveRoom(roomId: $r) }", r=room)


def after(events: list[dict[str, Any]], kind: str, room: str) -> list[dict[str, Any]]:
    """The room's events that came after the first ``kind`` event of that room."""
    index = next(i for i, e in enumerate(events) if e["type"] == kind and e["roomId"] == room)
    return [e for e in events[index + 1 :] if e.get("roomId") == room]


@pytest.mark.parametrize("how", ["ban", "leave"])
async def test_ban_or_leave_stops_the_room_not_the_socket(auth_env: AuthEnv, how: str) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, victim, tb = await two_users(auth_env.sink, c)
            room = await room_with_victim(c, ta, tb)
            async with live_client(auth_env.url, tb) as live:
                await post(c, ta, "in the room", room)
                await live.wait_for(lambda e: _body(e) == "in the room")
                await lose_room(c, how, ta, tb, room, victim.user["id"])
                await ok(c, ta, TYPING, r=room)
                await post(c, ta, "secret", room)
                await post(c, ta, "marker")  # #general: everything before it was handled
                await live.wait_for(lambda e: _body(e) == "marker")
                kind = "MEMBER_BANNED" if how == "ban" else "MEMBER_LEFT"
                assert after(live.events, kind, room) == []
                assert "secret" not in bodies(live) and live.closed_code is None
                # What the live stream withholds, history withholds too.
                assert (await gql(c, tb, HISTORY, r=room))["errors"]


async def test_permission_loss_does_not_gate_reading(auth_env: AuthEnv) -> None:
    """Reading a room needs membership only; no permission grants or removes it.

    A room-scoped deny of ``message.post`` makes the room read-only for the
    member; live delivery and history agree that they still read it.
    """
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, victim, tb = await two_users(auth_env.sink, c)
            room = await room_with_victim(c, ta, tb)
            await register(c, auth_env.sink, OWNER_EMAIL, "boss", PW)
            owner = await login_token(c, "boss", PW)
            deny = """mutation($s: String!, $p: String!) {
              setPermission(subject: $s, scope: $p, permission: "message.post", effect: DENY) }"""
            await ok(c, owner, deny, s=f"user:{victim.user['id']}", p=f"room:{room}")
            refused = await gql(c, tb, POST, r=room, b="no")
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            async with live_client(auth_env.url, tb) as live:
                await post(c, ta, "still readable", room)
                await live.wait_for(lambda e: _body(e) == "still readable")
            history = await ok(c, tb, HISTORY, r=room)
            assert [e["body"] for e in history["room"]["events"]["events"]] == ["still readable"]


# --- several processes ----------------------------------------------------------------
async def test_revoke_through_one_process_ends_the_socket_on_another(
    nursery: trio.Nursery, nats_server: NatsProc, tmp_path: Path
) -> None:
    """Two ``chatto run`` processes on one NATS: revoke on A, the socket lives on B."""
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    shared = set_keys(
        render_initial_config(),
        {
            "nats.url": nats_server.url,
            "nats.token": nats_server.token,
            "nats.embedded.enabled": False,
            "auth.bcrypt_cost": 4,
            "limits.enabled": False,
            "smtp.enabled": True,
            "smtp.host": "127.0.0.1",
            "smtp.port": port,
            "smtp.starttls": False,
            "logging.level": "warning",
        },
    )
    a, b = ChattoProc("a", shared, tmp_path / "a"), ChattoProc("b", shared, tmp_path / "b")
    try:
        a.start()
        b.start()
        await trio.to_thread.run_sync(a.wait_ready)
        await trio.to_thread.run_sync(b.wait_ready)
        with trio.fail_after(60):
            async with httpx.AsyncClient(base_url=a.url, timeout=20) as ca:
                ta, _victim, tb = await two_users(sink, ca)
                async with live_client(b.url, tb) as live, query_socket(b.url, tb) as quiet:
                    await post(ca, ta, "before")
                    await live.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                    r = await ca.post("/auth/revoke-token", json={"token": tb})
                    assert r.status_code == 200
                    await post(ca, ta, "after")
                    await wait_closed(live)
                    assert_terminated(live, "before", "after")
                    assert await closed_code(quiet) == 4403
    finally:
        a.kill()
        b.kill()


async def test_a_notice_lost_during_a_disconnect_is_caught_on_reconnect(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    """The key is deleted with no notice reaching this process (as while it was
    disconnected from NATS): after the reconnect every tracked record is re-read."""
    from chatto.bus.storage import RUNTIME_STATE

    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_NATS_EMBEDDED_ENABLED="false",
        CHATTO_NATS_URL=nats_server.url,
        CHATTO_NATS_TOKEN=nats_server.token,
    )
    services = env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            await register(c, env.sink, "victim@example.com", "victim", PW)
            tb = await login_token(c, "victim", PW)
            async with live_client(env.url, tb) as live:
                key = (await services.authn.from_headers(f"Bearer {tb}", None)).key
                await services.bridge.kv_delete(RUNTIME_STATE, key)  # and no notice
                nats_server.stop()
                await trio.to_thread.run_sync(nats_server.start)
                assert await wait_closed(live) == 4403
                assert live.events[-1]["type"] == "SESSION_TERMINATED"
                assert services.credentials.statistics().sweeps >= 1
    await env.server.stop()


async def test_the_notice_names_the_credential_without_carrying_it(auth_env: AuthEnv) -> None:
    from chatto.auth.ends import SUBJECT
    from chatto.bus.reader import open_subscription

    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _ta, _victim, tb = await two_users(auth_env.sink, c)
            async with open_subscription(services.bridge, SUBJECT) as sub:
                r = await c.post("/auth/revoke-token", json={"token": tb})
                assert r.status_code == 200
                batch = await anext(sub)
    [(_subject, data)] = batch
    secret = tb.rsplit(".", 1)[1]
    assert secret not in data.decode() and tb not in data.decode()
    [key] = json.loads(data)["k"]
    assert key.startswith("session.") and key.count(".") == 2
