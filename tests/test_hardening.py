"""GraphQL limits, CORS and WebSocket origin checks."""

from __future__ import annotations

import json

import httpx
import pytest
import trio
from graphql import build_schema, parse, specified_rules, validate
from trio_websocket import HandshakeError, open_websocket_url

from chatto.gql.limits import LimitsRule
from tests.conftest import ConfigFactory, ServerHandle, start_server

NODE = build_schema("type Query { node: Node } type Node { id: ID child: Node }")


def errors(query: str) -> list[str]:
    return [e.message for e in validate(NODE, parse(query), [*specified_rules, LimitsRule])]


def nested(depth: int) -> str:
    """A query ``depth`` objects deep (node, then children), plus ``id``."""
    return "{ node { " + "child { " * (depth - 1) + "id" + " }" * depth + " }"


def test_depth_limit_counts_fragments_and_skips_introspection() -> None:
    assert errors(nested(11)) == []  # 11 nodes + id = depth 12
    assert any("depth exceeds the limit of 12" in m for m in errors(nested(12)))
    frag = "fragment F on Node { child { child { child { child { child { child { id } } } } } } }"
    q = "{ node { child { child { child { child { child { child { ...F } } } } } } } } " + frag
    assert any("depth" in m for m in errors(q))
    deep_intro = (
        "{ __schema { types { fields { type { ofType { ofType { ofType { name } } } } } } } }"
    )
    assert errors(deep_intro) == []


def test_complexity_limit() -> None:
    wide = "{ " + " ".join(f"a{i}: node {{ id }}" for i in range(251)) + " }"
    assert any("complexity exceeds the limit of 500" in m for m in errors(wide))
    assert errors("{ " + " ".join(f"a{i}: node {{ id }}" for i in range(250)) + " }") == []


async def test_limits_over_http(chatto: ServerHandle) -> None:
    # 253 selections as written (under graphql.max_selections), 501 fields expanded.
    wide = "{ server { ...S ...S } } fragment S on Server {" + " name" * 250 + " }"
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=chatto.url) as c:
            r = await c.post("/api/graphql", json={"query": wide})
    assert r.status_code == 400
    assert "complexity" in r.json()["errors"][0]["message"]
    assert r.json()["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"


async def test_cors_for_explicit_origins_only(chatto: ServerHandle) -> None:
    port = chatto.url.rsplit(":", 1)[1]
    local = f"http://localhost:{port}"
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=chatto.url) as c:
            pre = await c.options(
                "/api/graphql", headers={"origin": local, "access-control-request-method": "POST"}
            )
            assert pre.status_code == 204
            assert pre.headers["access-control-allow-origin"] == local
            assert pre.headers["access-control-allow-credentials"] == "true"
            assert "x-csrf-token" in pre.headers["access-control-allow-headers"]
            r = await c.get("/api/server", headers={"origin": "http://localhost:4000"})
            assert r.headers["access-control-allow-origin"] == "http://localhost:4000"
            evil = await c.get("/api/server", headers={"origin": "https://evil.example"})
            assert "access-control-allow-origin" not in evil.headers
            assert evil.headers["x-frame-options"] == "DENY"


async def test_wildcard_mode_never_sends_credentials(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    handle = await start_server(nursery, make_config(CHATTO_WEBSERVER_ALLOWED_ORIGINS="*"))
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=handle.url) as c:
            r = await c.get("/api/server", headers={"origin": "https://any.example"})
            assert r.headers["access-control-allow-origin"] == "*"
            assert "access-control-allow-credentials" not in r.headers
    await handle.stop()


async def test_websocket_origin_check(chatto: ServerHandle) -> None:
    url = chatto.url.replace("http://", "ws://") + "/api/graphql"
    port = chatto.url.rsplit(":", 1)[1]
    with trio.fail_after(10):
        with pytest.raises(HandshakeError):
            async with open_websocket_url(
                url,
                subprotocols=["graphql-transport-ws"],
                extra_headers=[("Origin", "https://evil.example")],
            ):
                pass
        for origin in (None, f"http://127.0.0.1:{port}"):
            headers = [("Origin", origin)] if origin else []
            async with open_websocket_url(
                url, subprotocols=["graphql-transport-ws"], extra_headers=headers
            ) as ws:
                await ws.send_message(json.dumps({"type": "connection_init"}))
                assert json.loads(await ws.get_message())["type"] == "connection_ack"
