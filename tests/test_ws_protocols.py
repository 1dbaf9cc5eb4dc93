"""Both GraphQL WebSocket subprotocols on /api/graphql, with a raw client.

``graphql-transport-ws`` and the older ``graphql-ws`` (Apollo) are two
adapters over one core: negotiation, each protocol's own edge cases
(keep-alive, stop/complete, duplicate ids), and the behaviour they must
share (init timeout, limits, credential ends, origin check, shutdown).
The graphql-transport-ws basics (ping/pong, complete, 4409, 4401, 4429) are
in ``test_http.py``; the real ``gql`` client in ``test_gql_client.py``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import (
    ConnectionClosed,
    HandshakeError,
    WebSocketConnection,
    open_websocket_url,
)

from actors.server import SetServerProfile
from tests.authflow import login_token, register
from tests.conftest import AuthEnv, ConfigFactory, ServerHandle, start_server
from tests.liveclient import live_client

BOTH = ["graphql-transport-ws", "graphql-ws"]
START = {"graphql-transport-ws": "subscribe", "graphql-ws": "start"}
RESULT = {"graphql-transport-ws": "next", "graphql-ws": "data"}
SERVER_EVENTS = "subscription { serverEvents { type } }"
PW = "a long enough password"


@asynccontextmanager
async def raw(
    url: str, protocols: list[str], headers: list[tuple[str, str]] | None = None
) -> AsyncIterator[WebSocketConnection]:
    ws_url = url.replace("http://", "ws://") + "/api/graphql"
    async with open_websocket_url(ws_url, subprotocols=protocols, extra_headers=headers) as ws:
        yield ws


async def send(ws: WebSocketConnection, **msg: Any) -> None:
    await ws.send_message(json.dumps(msg))


async def recv(ws: WebSocketConnection) -> dict[str, Any]:
    """The next message that is not a graphql-ws keep-alive."""
    while True:
        msg: dict[str, Any] = json.loads(await ws.get_message())
        if msg["type"] != "ka":
            return msg


async def closed(ws: WebSocketConnection) -> tuple[int, str]:
    with pytest.raises(ConnectionClosed) as info:
        while True:
            await ws.get_message()
    return info.value.reason.code, info.value.reason.reason or ""


async def ready(ws: WebSocketConnection, payload: dict[str, Any] | None = None) -> None:
    await send(ws, type="connection_init", payload=payload or {})
    assert (await recv(ws))["type"] == "connection_ack"


async def test_subprotocol_is_the_clients_first_choice_we_speak(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        for offered, chosen in [
            (["graphql-ws", "graphql-transport-ws"], "graphql-ws"),
            (["graphql-transport-ws", "graphql-ws"], "graphql-transport-ws"),
            (["mqtt", "graphql-ws"], "graphql-ws"),
        ]:
            async with raw(chatto.url, offered) as ws:
                assert ws.subprotocol == chosen
                await ready(ws)
        for offered in (["mqtt"], []):
            async with raw(chatto.url, offered) as ws:
                code, reason = await closed(ws)
                assert code == 4406
                assert "graphql-transport-ws" in reason and "graphql-ws" in reason


async def test_graphql_ws_operations_keepalive_stop_and_replacement(chatto: ServerHandle) -> None:
    services = chatto.running.services
    with trio.fail_after(20):
        async with raw(chatto.url, ["graphql-ws"]) as ws:
            await send(ws, type="connection_init", payload={})
            assert json.loads(await ws.get_message())["type"] == "connection_ack"
            assert json.loads(await ws.get_message())["type"] == "ka"  # right after the ack
            await send(ws, id="q", type="start", payload={"query": "{ server { name } }"})
            assert await recv(ws) == {
                "id": "q",
                "type": "data",
                "payload": {"data": {"server": {"name": "Chatto"}}},
            }
            assert await recv(ws) == {"id": "q", "type": "complete"}
            await send(ws, id="s", type="start", payload={"query": SERVER_EVENTS})
            while services.hub.subscriber_count("server") == 0:
                await trio.sleep(0.01)
            # The same id again replaces the operation (the reference server's rule).
            replaced = "subscription { serverEvents { type seq } }"
            await send(ws, id="s", type="start", payload={"query": replaced})
            await trio.sleep(0.2)
            assert services.hub.subscriber_count("server") == 1
            done = await services.actors.ask("server", "", SetServerProfile("Renamed"))
            msg = await recv(ws)
            assert msg["type"] == "data" and msg["id"] == "s"
            assert msg["payload"]["data"]["serverEvents"]["seq"] == done.last_seq
            await send(ws, id="s", type="stop")
            assert await recv(ws) == {"id": "s", "type": "complete"}
            while services.hub.subscriber_count("server") != 0:
                await trio.sleep(0.01)
            await send(ws, id="nope", type="stop")  # unknown: nothing to complete
            await send(ws, type="connection_terminate")
            assert (await closed(ws))[0] == 1000


async def test_graphql_ws_errors_and_refusals(chatto: ServerHandle) -> None:
    start = {"id": "x", "type": "start", "payload": {"query": SERVER_EVENTS}}
    init = {"type": "connection_init", "payload": {}}
    with trio.fail_after(20):
        for messages, code in [
            ([start], 4401),
            ([init, init], 4429),
            ([init, {"type": "ping"}], 4400),  # not a graphql-ws message
            ([{"no": "type"}], 4400),
        ]:
            async with raw(chatto.url, ["graphql-ws"]) as ws:
                for m in messages:
                    await ws.send_message(json.dumps(m))
                assert (await closed(ws))[0] == code, messages
        async with raw(chatto.url, ["graphql-ws"]) as ws:
            await send(ws, type="connection_init", payload={"authorization": "Bearer bogus"})
            refused = await recv(ws)
            assert refused == {"type": "connection_error", "payload": {"message": "Forbidden"}}
            assert await closed(ws) == (4403, "Forbidden")
        async with raw(chatto.url, ["graphql-ws"]) as ws:
            await ready(ws)
            # Refused before execution: one error object, the protocol's shape.
            await send(ws, id="e", type="start", payload={"query": "subscription { nope }"})
            msg = await recv(ws)
            assert msg["type"] == "error" and msg["id"] == "e"
            assert "nope" in msg["payload"]["message"]
            # Errors from execution travel in the data message.
            await send(ws, id="v", type="start", payload={"query": "{ viewer { id } }"})
            msg = await recv(ws)
            assert msg["type"] == "data"
            assert msg["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


@pytest.mark.parametrize("protocol", BOTH)
async def test_init_timeout_is_shared(
    nursery: trio.Nursery, make_config: ConfigFactory, protocol: str
) -> None:
    config = make_config(CHATTO_WEBSERVER_WEBSOCKET_INIT_TIMEOUT_SECONDS="0.3")
    handle = await start_server(nursery, config)
    with trio.fail_after(10):
        async with raw(handle.url, [protocol]) as ws:
            assert await closed(ws) == (4408, "Connection initialisation timeout")
        async with raw(handle.url, [protocol]) as ws:
            await ready(ws)
            await trio.sleep(0.5)  # acknowledged: the timer no longer applies
            await send(ws, id="q", type=START[protocol], payload={"query": "{ server { name } }"})
            assert (await recv(ws))["type"] == RESULT[protocol]
    await handle.stop()


@pytest.mark.parametrize("protocol", BOTH)
async def test_limits_and_origin_check_are_shared(chatto: ServerHandle, protocol: str) -> None:
    with trio.fail_after(30):
        async with raw(chatto.url, [protocol]) as ws:
            await ready(ws)
            for i in range(100):
                await send(ws, id=f"s{i}", type=START[protocol], payload={"query": SERVER_EVENTS})
            await send(ws, id="over", type=START[protocol], payload={"query": SERVER_EVENTS})
            msg = await recv(ws)
            assert msg["id"] == "over" and msg["type"] == "error"
            assert "too many operations" in json.dumps(msg["payload"])
        async with raw(chatto.url, [protocol]) as ws:
            await ready(ws)
            await ws.send_message("x" * (1024 * 1024 + 1))
            assert (await closed(ws))[0] == 1009
        with pytest.raises(HandshakeError):
            async with raw(chatto.url, [protocol], [("Origin", "https://evil.example")]):
                pass


@pytest.mark.parametrize("protocol", BOTH)
async def test_revoked_token_ends_the_socket_in_both(auth_env: AuthEnv, protocol: str) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            await register(c, auth_env.sink, "ws@example.com", "wsuser", PW)
            token = await login_token(c, "wsuser", PW)
            async with live_client(auth_env.url, token, protocol=protocol) as live:
                r = await c.post("/auth/revoke-token", json={"token": token})
                assert r.status_code == 200
                while live.closed_code is None:
                    live.changed = trio.Event()
                    await live.changed.wait()
                assert live.events[-1]["type"] == "SESSION_TERMINATED"
                assert live.closed_code == 4403


async def test_shutdown_closes_open_sockets_at_once(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    """Both protocols get 1001 and the server stops well inside its grace period."""
    handle = await start_server(nursery, make_config(CHATTO_WEBSERVER_SHUTDOWN_GRACE_SECONDS="20"))
    codes: dict[str, tuple[int, str]] = {}

    async def hold(protocol: str, task_status: trio.TaskStatus[None]) -> None:
        async with raw(handle.url, [protocol]) as ws:
            await ready(ws)
            await send(ws, id="s", type=START[protocol], payload={"query": SERVER_EVENTS})
            task_status.started()
            codes[protocol] = await closed(ws)

    with trio.fail_after(15):
        async with trio.open_nursery() as clients:
            for protocol in BOTH:
                await clients.start(hold, protocol)
            services = handle.running.services
            while services.hub.subscriber_count("server") < 2:
                await trio.sleep(0.01)
            started = trio.current_time()
            handle.shutdown.set()
        await handle.stopped.wait()
        assert trio.current_time() - started < 10  # not the 20 s grace
    assert codes == {p: (1001, "Server shutting down") for p in BOTH}
