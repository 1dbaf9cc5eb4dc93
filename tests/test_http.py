"""End to end over loopback: HTTP routes, GraphQL over HTTP and WebSocket."""

from __future__ import annotations

import json
import logging
from typing import Any

import httpx
import pytest
import trio
from trio_websocket import ConnectionClosed, open_websocket_url

from actors.server import SetServerProfile
from chatto.config_schema import CacheConfig
from chatto.gql.schema import load_sdl
from chatto.logs import JsonFormatter, TextFormatter
from tests.conftest import ServerHandle

SECURITY = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "strict-origin-when-cross-origin",
}


def client(handle: ServerHandle) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=handle.url, timeout=10)


async def gql(handle: ServerHandle, query: str, **extra: Any) -> httpx.Response:
    async with client(handle) as c:
        return await c.post("/api/graphql", json={"query": query, **extra})


async def test_health_ready_server_info_and_headers(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with client(chatto) as c:
            for path in ("/healthz", "/readyz", "/api/server", "/api/playground"):
                r = await c.get(path)
                assert r.status_code == 200, path
                for k, v in SECURITY.items():
                    assert r.headers[k] == v, (path, k)
            ready = (await c.get("/readyz")).json()
            assert ready["ready"] is True and all(ready["checks"].values())
            # The cold-history cache (issue #22) is reported, never a check.
            assert ready["cache"]["max_pages"] == 256 and ready["cache"]["pages"] == 0
            cache = ready["cache"]
            assert cache["max_hot_messages"] == CacheConfig().hot_messages == 100
            assert cache["max_hot_rooms"] == CacheConfig().hot_rooms == 500
            assert cache["hot_evicted"] == 0 and cache["index_swept"] == 0
            assert cache["max_index_bytes"] == 128 << 20 and cache["index_bytes"] > 0
            info = (await c.get("/api/server")).json()
            assert info["name"] == "Chatto" and info["graphql"] == "/api/graphql"
            nf = await c.get("/nope")
            assert nf.status_code == 404 and nf.headers["x-frame-options"] == "DENY"
            assert (await c.post("/healthz")).status_code == 405


async def test_the_sdl_is_served(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with client(chatto) as c:
            r = await c.get("/api/schema.graphql")
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
            assert r.text == load_sdl() and "directive @public" in r.text
            assert (await c.post("/api/schema.graphql")).status_code == 405


async def test_async_sibling_fields_resolve_under_trio(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        r = await gql(
            chatto,
            "{ server { name version streamHead natsRoundTripMs projectedPosition"
            " liveActors a: streamHead b: natsRoundTripMs } }",
        )
        assert r.status_code == 200, r.text
        body = r.json()
        assert "errors" not in body
        s = body["data"]["server"]
        assert s["name"] == "Chatto"
        assert isinstance(s["streamHead"], int) and s["a"] == s["streamHead"]
        assert s["natsRoundTripMs"] is not None and s["natsRoundTripMs"] >= 0
        assert s["b"] is not None


async def test_authenticated_field_returns_unauthenticated(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        r = await gql(chatto, '{ server { name } user(id: "x") { id login } }')
        body = r.json()
        assert body["data"]["server"]["name"] == "Chatto"
        assert body["data"]["user"] is None
        err = body["errors"][0]
        assert err["extensions"]["code"] == "UNAUTHENTICATED"
        assert err["path"] == ["user"]
        # A non-null authenticated field nulls the whole response, still UNAUTHENTICATED.
        body = (await gql(chatto, "{ viewer { id } }")).json()
        assert body["data"] is None
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_bad_graphql_requests_get_clear_errors(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with client(chatto) as c:
            r = await c.post(
                "/api/graphql", content=b"{nope", headers={"content-type": "application/json"}
            )
            assert r.status_code == 400 and "not valid JSON" in r.text
            r = await c.post("/api/graphql", json={"query": "{ server { "})
            assert r.status_code == 400
            assert r.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
            r = await c.post("/api/graphql", json={"query": "{ nosuchfield }"})
            assert r.status_code == 400
            assert "nosuchfield" in r.json()["errors"][0]["message"]
            r = await c.post("/api/graphql", json={"query": 5})
            assert r.status_code == 400
            r = await c.post(
                "/api/graphql", content=b"query=x", headers={"content-type": "text/plain"}
            )
            assert r.status_code == 415
            big = "{ server { name } }" + " " * (1024 * 1024 + 10)
            r = await c.post("/api/graphql", json={"query": big})
            assert r.status_code == 413
            r = await c.post("/api/graphql", json={"query": "subscription { serverEvents { id } }"})
            assert r.status_code == 400 and "graphql-transport-ws" in r.text
            r = await c.get("/api/graphql", params={"query": "{ server { name } }"})
            assert r.status_code == 200 and r.json()["data"]["server"]["name"] == "Chatto"
            # The server is still fine after all that.
            assert (await c.get("/readyz")).status_code == 200


async def _ws(handle: ServerHandle) -> Any:
    url = handle.url.replace("http://", "ws://") + "/api/graphql"
    return open_websocket_url(url, subprotocols=["graphql-transport-ws"])


async def _recv(ws: Any) -> dict[str, Any]:
    return json.loads(await ws.get_message())  # type: ignore[no-any-return]


async def test_subscription_round_trip_over_graphql_transport_ws(chatto: ServerHandle) -> None:
    services = chatto.running.services
    with trio.fail_after(15):
        async with await _ws(chatto) as ws:
            await ws.send_message(json.dumps({"type": "connection_init"}))
            assert (await _recv(ws))["type"] == "connection_ack"
            await ws.send_message(json.dumps({"type": "ping"}))
            assert (await _recv(ws))["type"] == "pong"
            await ws.send_message(
                json.dumps(
                    {
                        "id": "s1",
                        "type": "subscribe",
                        "payload": {"query": "subscription { serverEvents { id type seq } }"},
                    }
                )
            )
            while services.hub.subscriber_count("server") == 0:
                await trio.sleep(0.01)
            done = await services.actors.ask("server", "", SetServerProfile("Over WS"))
            msg = await _recv(ws)
            assert msg["type"] == "next" and msg["id"] == "s1"
            ev = msg["payload"]["data"]["serverEvents"]
            assert ev["type"] == "server.profile_changed" and ev["seq"] == done.last_seq
            # A query over the same socket, then completing the subscription.
            await ws.send_message(
                json.dumps(
                    {"id": "q1", "type": "subscribe", "payload": {"query": "{ server { name } }"}}
                )
            )
            msg = await _recv(ws)
            assert msg == {
                "id": "q1",
                "type": "next",
                "payload": {"data": {"server": {"name": "Over WS"}}},
            }
            assert await _recv(ws) == {"id": "q1", "type": "complete"}
            await ws.send_message(json.dumps({"id": "s1", "type": "complete"}))
            while services.hub.subscriber_count("server") != 0:
                await trio.sleep(0.01)


async def _closed_with(handle: ServerHandle, messages: list[dict[str, Any]]) -> int:
    async with await _ws(handle) as ws:
        for m in messages:
            await ws.send_message(json.dumps(m))
        with pytest.raises(ConnectionClosed) as info:
            while True:
                await ws.get_message()
    return int(info.value.reason.code)


async def test_protocol_violations_close_with_the_protocol_codes(chatto: ServerHandle) -> None:
    sub = {
        "id": "x",
        "type": "subscribe",
        "payload": {"query": "subscription { serverEvents { id } }"},
    }
    init = {"type": "connection_init"}
    with trio.fail_after(15):
        assert await _closed_with(chatto, [sub]) == 4401
        assert await _closed_with(chatto, [init, init]) == 4429
        assert await _closed_with(chatto, [init, sub, sub]) == 4409
        assert await _closed_with(chatto, [{"type": "bogus"}]) == 4400
        async with await _ws(chatto) as ws:
            await ws.send_message("not json")
            with pytest.raises(ConnectionClosed) as info:
                await ws.get_message()
            assert info.value.reason.code == 4400


async def test_subscription_errors_are_reported_per_operation(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with await _ws(chatto) as ws:
            await ws.send_message(json.dumps({"type": "connection_init"}))
            await _recv(ws)
            await ws.send_message(
                json.dumps(
                    {"id": "e", "type": "subscribe", "payload": {"query": "subscription { nope }"}}
                )
            )
            msg = await _recv(ws)
            assert msg["type"] == "error" and msg["id"] == "e"
            await ws.send_message(
                json.dumps(
                    {"id": "q", "type": "subscribe", "payload": {"query": "{ viewer { id } }"}}
                )
            )
            msg = await _recv(ws)
            assert msg["payload"]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_query_text_and_variables_never_reach_the_log(
    chatto: ServerHandle, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    secret = "hunter2-very-secret-value"
    with trio.fail_after(10):
        await gql(chatto, '{ me { id } server { name(x: "' + secret + '") } }')
        await gql(chatto, "query Q($p: String) { viewer { login } }", variables={"p": secret})
        await gql(chatto, "{ viewer { id } } # " + secret)
    assert caplog.records, "expected at least some log output to check"
    assert all(secret not in r.getMessage() for r in caplog.records)
    assert secret not in caplog.text
    # The same records as JSON lines (logging.format = "json") and as text.
    for formatter in (JsonFormatter(), TextFormatter()):
        for record in caplog.records:
            line = formatter.format(record)
            assert secret not in line
            if isinstance(formatter, JsonFormatter):
                assert json.loads(line)["message"] == record.getMessage()
