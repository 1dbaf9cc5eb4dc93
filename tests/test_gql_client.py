"""The real ``gql`` client (asyncio, in a worker thread) against a running Chatto.

Both WebSocket subprotocols: gql's default offers ``graphql-ws`` first (the
older Apollo protocol, which it also assumes whenever it cannot read the
response header), and ``subprotocols=[graphql-transport-ws]`` forces the
newer one. In each mode: a signed-in query, a server-side validation error,
and a ``myEvents`` subscription that sees a message the same session posts;
leaving the subscription stops it on the server. gql's HTTP transport reads
``/api/graphql`` and the SDL from ``/api/schema.graphql`` validates locally.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
import trio

from tests.authflow import login_token, register
from tests.conftest import AuthEnv

PW = "a long enough password"
POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
EVENTS = "subscription { myEvents { type message { body } } }"


def _ws_session(url: str, token: str, subprotocols: list[str] | None) -> dict[str, Any]:
    """One gql session over WebSocket; what it saw (runs in its own asyncio loop)."""
    from gql import Client, GraphQLRequest, gql
    from gql.transport.exceptions import TransportQueryError
    from gql.transport.websockets import WebsocketsTransport

    async def main() -> dict[str, Any]:
        extra = {} if subprotocols is None else {"subprotocols": subprotocols}
        transport = WebsocketsTransport(
            url=url, init_payload={"authorization": f"Bearer {token}"}, **extra
        )
        seen: dict[str, Any] = {"types": []}
        async with Client(transport=transport) as session:
            seen["protocol"] = transport.subprotocol
            seen["viewer"] = await session.execute(gql("{ viewer { login } }"))
            try:
                await session.execute(gql("{ nosuchfield }"))
            except TransportQueryError as exc:
                seen["error"] = str(exc)
            post = GraphQLRequest(POST, variable_values={"r": "general", "b": "via gql"})
            async for result in session.subscribe(gql(EVENTS)):
                event = result["myEvents"]
                seen["types"].append(event["type"])
                if event["type"] == "PRESENCE" and len(seen["types"]) == 1:
                    await session.execute(post)  # same socket, while subscribed
                if event["type"] == "MESSAGE_POSTED":
                    seen["body"] = event["message"]["body"]
                    break  # gql stops the operation (stop / complete)
            seen["after_stop"] = await session.execute(gql("{ server { name } }"))
        return seen

    return asyncio.run(asyncio.wait_for(main(), 30))


@pytest.mark.parametrize(
    ("subprotocols", "expected"),
    [(None, "graphql-ws"), (["graphql-transport-ws"], "graphql-transport-ws")],
)
async def test_gql_websocket_transport_in_both_protocols(
    auth_env: AuthEnv, subprotocols: list[str] | None, expected: str
) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            account = await register(c, auth_env.sink, "gql@example.com", "gqluser", PW)
            token = await login_token(c, "gqluser", PW)
        url = auth_env.url.replace("http://", "ws://") + "/api/graphql"
        seen = await trio.to_thread.run_sync(_ws_session, url, token, subprotocols)
        assert seen["protocol"] == expected
        assert seen["viewer"] == {"viewer": {"login": "gqluser"}}
        assert "nosuchfield" in seen["error"]
        assert seen["types"][0] == "PRESENCE" and seen["body"] == "via gql"
        assert seen["after_stop"] == {"server": {"name": "Chatto"}}
        # The stopped subscription left the hub (gql closed the socket too).
        user_topic = f"user.{account.user['id']}"
        while services.hub.subscriber_count(user_topic):
            await trio.sleep(0.01)


def _http_session(base: str) -> dict[str, Any]:
    """gql over HTTP, validating locally against the SDL the server publishes."""
    import httpx as sync_httpx
    from gql import Client, gql
    from gql.transport.httpx import HTTPXAsyncTransport

    sdl = sync_httpx.get(base + "/api/schema.graphql", timeout=10).text

    async def main() -> dict[str, Any]:
        transport = HTTPXAsyncTransport(url=base + "/api/graphql")
        async with Client(transport=transport, schema=sdl) as session:
            seen = {"server": await session.execute(gql("{ server { name } }"))}
            try:
                await session.execute(gql("{ nosuchfield }"))
            except Exception as exc:  # gql validates before sending: GraphQLError
                seen["local_error"] = str(exc)
            return seen

    return asyncio.run(asyncio.wait_for(main(), 30))


async def test_gql_http_transport_with_the_published_sdl(auth_env: AuthEnv) -> None:
    with trio.fail_after(30):
        seen = await trio.to_thread.run_sync(_http_session, auth_env.url)
    assert seen["server"] == {"server": {"name": "Chatto"}}
    assert "nosuchfield" in seen["local_error"]
