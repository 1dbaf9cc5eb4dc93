"""``postMessage(clientMessageId:)``: a retried post is stored once.

A client whose post timed out (or met a NATS election) cannot know whether it
was stored. With an idempotency key it can simply retry: the same key from the
same author in the same room returns the first message, through any process,
even one whose room actor loaded before the first post.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from typing import Any

import attrs
import httpx
import pytest
import trio

from chatto.bus.storage import EVENT_STREAM
from tests.authflow import login_token, register
from tests.conftest import ConfigFactory, NatsProc, ServerHandle, start_server
from tests.liveclient import live_client
from tests.smtp_sink import SmtpSink
from tests.test_messaging import gql, ok

PW = "a long enough password"
POST = """mutation($r: ID!, $b: String!, $k: String) {
  postMessage(roomId: $r, body: $b, clientMessageId: $k) { id body author { id } } }"""
HISTORY = "query($r: ID!) { room(id: $r) { events(limit: 500) { events { id body } } } }"
JOIN = "mutation($r: ID!) { joinRoom(roomId: $r) { isMember } }"


@attrs.define
class Two:
    one: ServerHandle
    two: ServerHandle
    sink: SmtpSink
    nats: NatsProc


@pytest.fixture
async def two(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> AsyncIterator[Two]:
    """Two Chatto servers (one config, so the same secrets) on one external NATS."""
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    config = make_config(
        CHATTO_NATS_EMBEDDED_ENABLED="false",
        CHATTO_NATS_URL=nats_server.url,
        CHATTO_NATS_TOKEN=nats_server.token,
        CHATTO_SMTP_ENABLED="true",
        CHATTO_SMTP_HOST="127.0.0.1",
        CHATTO_SMTP_PORT=str(port),
        CHATTO_SMTP_STARTTLS="false",
        CHATTO_AUTH_BCRYPT_COST="4",
        CHATTO_LIMITS_ENABLED="false",
    )
    one = await start_server(nursery, config)
    two = await start_server(nursery, config)
    yield Two(one, two, sink, nats_server)
    await one.stop()
    await two.stop()


async def history(c: httpx.AsyncClient, token: str, room: str) -> list[dict[str, Any]]:
    data = await ok(c, token, HISTORY, r=room)
    return data["room"]["events"]["events"]  # type: ignore[no-any-return]


async def test_same_key_returns_the_first_message_on_any_process(two: Two) -> None:
    with trio.fail_after(60):
        async with (
            httpx.AsyncClient(base_url=two.one.url, timeout=20) as c1,
            httpx.AsyncClient(base_url=two.two.url, timeout=20) as c2,
        ):
            alice = await register(c1, two.sink, "alice@example.com", "alice", PW)
            bob = await register(c1, two.sink, "bob@example.com", "bob", PW)
            ta, tb = await login_token(c1, "alice", PW), await login_token(c1, "bob", PW)
            room = (await ok(c1, ta, 'mutation { createRoom(name: "idem") { id } }'))["createRoom"][
                "id"
            ]
            await ok(c2, tb, JOIN, r=room)  # process two's room actor loads now
            async with live_client(two.two.url, tb) as bob_live:
                first = (await ok(c1, ta, POST, r=room, b="hello", k="k-1"))["postMessage"]
                # The retry goes to the other process, whose actor is stale.
                again = (await ok(c2, ta, POST, r=room, b="hello", k="k-1"))["postMessage"]
                assert again == first
                # Same process again, and a body that differs: still the first.
                third = (await ok(c1, ta, POST, r=room, b="changed", k="k-1"))["postMessage"]
                assert third == first
                # Another key, or the same key from another author: new messages.
                other = (await ok(c1, ta, POST, r=room, b="second", k="k-2"))["postMessage"]
                bobs = (await ok(c2, tb, POST, r=room, b="bob's", k="k-1"))["postMessage"]
                plain = (await ok(c2, ta, POST, r=room, b="no key"))["postMessage"]
                assert len({first["id"], other["id"], bobs["id"], plain["id"]}) == 4
                assert bobs["author"]["id"] == bob.user["id"]
                await bob_live.wait_for(
                    lambda e: e["type"] == "MESSAGE_POSTED" and e["message"]["id"] == plain["id"]
                )
                live = [e["message"]["id"] for e in bob_live.of_type("MESSAGE_POSTED", room)]
            assert live == [first["id"], other["id"], bobs["id"], plain["id"]]
            # Reads are eventually consistent across processes: once each has
            # projected everything written, both answer the same history.
            for proc in (two.one, two.two):
                services = proc.running.services
                await services.projector.wait_for(await services.store.head())
            for c in (c1, c2):
                bodies = [m["body"] for m in await history(c, ta, room)]
                assert bodies == ["hello", "second", "bob's", "no key"]
            assert alice.user["id"]

            # The stream keeps a digest bound to the author, never the key.
            raw = b""
            bridge = two.one.running.services.bridge
            head = await bridge.stream_last_seq(EVENT_STREAM)
            async for batch in bridge.read_range(EVENT_STREAM, "evt.room.>", 0, head):
                raw += b"".join(m.data for m in batch)
            digest = hashlib.sha256(f"{alice.user['id']}\0k-1".encode()).hexdigest()
            assert raw.count(digest.encode()) == 1
            assert b'"k-1"' not in raw and b"k-2" not in raw


async def test_concurrent_retries_store_one_message(two: Two) -> None:
    """The same key posted at once through both processes: one message, one id."""
    with trio.fail_after(60):
        async with (
            httpx.AsyncClient(base_url=two.one.url, timeout=20) as c1,
            httpx.AsyncClient(base_url=two.two.url, timeout=20) as c2,
        ):
            await register(c1, two.sink, "carol@example.com", "carol", PW)
            tc = await login_token(c1, "carol", PW)
            room = (await ok(c1, tc, 'mutation { createRoom(name: "race") { id } }'))["createRoom"][
                "id"
            ]
            ids: list[str] = []

            async def post(c: httpx.AsyncClient, key: str) -> None:
                ids.append(
                    (await ok(c, tc, POST, r=room, b=f"race {key}", k=key))["postMessage"]["id"]
                )

            for i in range(10):
                async with trio.open_nursery() as n:
                    for c in (c1, c2, c1, c2):
                        n.start_soon(post, c, f"key-{i}")
            assert len(ids) == 40 and len(set(ids)) == 10
            for c in (c1, c2):
                bodies = [m["body"] for m in await history(c, tc, room)]
                assert bodies == [f"race key-{i}" for i in range(10)]


async def test_bad_and_retracted_keys_are_refused_clearly(two: Two) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=two.one.url, timeout=20) as c:
            await register(c, two.sink, "dave@example.com", "dave", PW)
            td = await login_token(c, "dave", PW)
            for key in ("", "x" * 65):
                doc = await gql(c, td, POST, r="general", b="hi", k=key)
                assert doc["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", doc
            assert await history(c, td, "general") == []
            msg = (await ok(c, td, POST, r="general", b="oops", k="r-1"))["postMessage"]
            await ok(
                c,
                td,
                'mutation($e: ID!) { retractMessage(roomId: "general", eventId: $e) }',
                e=msg["id"],
            )
            doc = await gql(c, td, POST, r="general", b="oops", k="r-1")
            assert doc["errors"][0]["extensions"]["code"] == "CONFLICT", doc
            assert "retracted" in doc["errors"][0]["message"]
