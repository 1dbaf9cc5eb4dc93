"""A dead NATS: every route answers a clear, retryable error and leaks nothing.

Chatto runs against an external nats-server the test stops (the embedded one
would be restarted by its supervisor). While it is down, every route that
needs NATS must answer 503 ``UNAVAILABLE`` (or close a WebSocket with 1013,
"try again later") instead of a 500 or a hang; no credential appears in an
answer; once NATS is back the same requests work and nothing written before
the outage is lost.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv, ConfigFactory, NatsProc, start_mail_server

PASSWORD = "correct horse battery"


@pytest.fixture
async def env(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> AsyncIterator[AuthEnv]:
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_NATS_EMBEDDED_ENABLED="false",
        CHATTO_NATS_URL=nats_server.url,
        CHATTO_NATS_TOKEN=nats_server.token,
        CHATTO_NATS_REQUEST_TIMEOUT_SECONDS="1",
    )
    yield env
    await env.server.stop()


async def ws_init(url: str, token: str) -> tuple[str, Any]:
    """Send connection_init; return ("ack", msg) or ("closed", (code, reason))."""
    ws_url = url.replace("http://", "ws://") + "/api/graphql"
    async with open_websocket_url(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
        await ws.send_message(json.dumps(init))
        try:
            return "ack", json.loads(await ws.get_message())
        except ConnectionClosed as exc:
            return "closed", (exc.reason.code, exc.reason.reason)


def assert_unavailable(r: httpx.Response, secrets: list[str]) -> None:
    assert r.status_code == 503, (r.request.url, r.status_code, r.text)
    assert "UNAVAILABLE" in r.text or "temporarily_unavailable" in r.text, r.text
    for secret in secrets:
        assert secret not in r.text


async def test_every_route_answers_503_while_nats_is_down_and_recovers(
    env: AuthEnv, nats_server: NatsProc
) -> None:
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            alice = await register(c, env.sink, "alice@example.com", "alice", PASSWORD)
            token = await login_token(c, "alice", PASSWORD)
            room = (
                await c.post(
                    "/api/graphql",
                    json={"query": 'mutation { createRoom(name: "before") { id } }'},
                    headers=bearer(token),
                )
            ).json()["data"]["createRoom"]["id"]
            secrets = [token, PASSWORD, alice.cookie]

            nats_server.stop()
            assert (await c.get("/healthz")).status_code == 200
            ready = await c.get("/readyz")
            assert ready.status_code == 503 and not ready.json()["checks"]["nats_connected"]

            query = {"query": "{ viewer { id } }"}
            assert_unavailable(
                await c.post("/api/graphql", json=query, headers=bearer(token)), secrets
            )
            assert_unavailable(
                await c.get(f"/assets/avatars/{alice.user['id']}", headers=bearer(token)), secrets
            )
            assert_unavailable(
                await c.get(f"/assets/attachments/{room}/nope", headers=bearer(token)), secrets
            )
            login = {"login": "alice", "password": PASSWORD, "mode": "token"}
            assert_unavailable(await c.post("/auth/login", json=login), secrets)
            assert_unavailable(
                await c.post("/auth/register", json={"email": "bob@example.com"}), secrets
            )
            oauth = await c.post(
                "/oauth/token",
                data={"grant_type": "authorization_code", "code": "x", "code_verifier": "y" * 43},
            )
            assert oauth.status_code in (400, 503), oauth.text  # an unknown code needs no NATS
            kind, detail = await ws_init(env.url, token)
            assert (kind, detail[0]) == ("closed", 1013), (kind, detail)

            nats_server.start()
            while (await c.get("/readyz")).status_code != 200:
                await trio.sleep(0.1)
            r = await c.post("/api/graphql", json=query, headers=bearer(token))
            assert r.status_code == 200, r.text
            assert r.json()["data"]["viewer"]["id"] == alice.user["id"]
            r = await c.post(
                "/api/graphql", json={"query": "{ rooms { name } }"}, headers=bearer(token)
            )
            assert "before" in [x["name"] for x in r.json()["data"]["rooms"]]
            kind, msg = await ws_init(env.url, token)
            assert kind == "ack" and msg["type"] == "connection_ack", msg
