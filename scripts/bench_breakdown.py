"""Benchmark: what one posted message costs, stage by stage (docs/PERFORMANCE.md).

Starts a complete Chatto in-process (embedded NATS, loopback HTTP), creates
two users in one room, then times each stage of the message path on its
own, sequentially, and reports the median and p99 in microseconds:

- GraphQL parse + validate, uncached and through the document cache
- bearer-token authentication (HMAC verifier, KV lookup through the bridge)
- body crypto: XChaCha20-Poly1305 seal and open with the full AAD
- one acknowledged NATS publish through the bridge (the round trip)
- ``MessagingService.post``: key lookup, seal, RoomActor, append, projection
- the ``postMessage`` mutation through GraphQL execution (auth already done)
- an HTTP round trip to /healthz (hypercorn + the httpx client in this process)
- the whole ``postMessage`` over HTTP (client in this process)
- fan-out, per subscriber: executing the ``myEvents`` document for one
  event, versus reusing a shared result (chatto/gql/fanout.py)

Sequential timings on an otherwise idle server: they add up to less than
the latency under load, where queueing and the GIL dominate (see the load
test). Run: ``.venv/bin/python scripts/bench_breakdown.py [--n 2000]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from bench_messaging import create_user, machine_info, make_config, percentile
from graphql import parse, specified_rules, validate
from graphql.execution import Executor, execute_subscription_event
from nats.js.api import StreamConfig

from chatto.auth.authn import Authenticator
from chatto.crypto import aad, aead
from chatto.gql.context import SHARE, RequestContext
from chatto.gql.execute import execute, prepare
from chatto.gql.fanout import SharedResults
from chatto.gql.limits import LimitsRule
from chatto.gql.schema import build_schema
from chatto.server import Running, serve_chatto
from chatto.tuning import tune_gc

POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
EVENTS = "subscription { myEvents { type roomId eventId userId message { id body createdAt } } }"
BODY = "a typical chat message of about sixty characters, give or take"


def figures(samples: list[float]) -> dict[str, float]:
    return {
        "median_us": round(statistics.median(samples) * 1e6, 1),
        "p99_us": round(percentile(samples, 0.99) * 1e6, 1),
    }


async def timed(n: int, fn: Callable[[], Awaitable[Any]]) -> dict[str, float]:
    for _ in range(min(50, n)):  # warm caches and connections
        await fn()
    samples = []
    for _ in range(n):
        t0 = time.perf_counter()
        await fn()
        samples.append(time.perf_counter() - t0)
    return figures(samples)


async def stages(running: Running, n: int) -> dict[str, dict[str, float]]:
    services = running.services
    schema = build_schema()
    alice = await create_user(services, 0)
    bob = await create_user(services, 1)
    room = await services.messaging.create_room(alice.id, "breakdown", "", "")
    await services.messaging.join(bob.id, room.id)
    rules = (*specified_rules, LimitsRule)
    payload = {"query": POST, "variables": {"r": room.id, "b": BODY}}
    limits = services.config.graphql
    out: dict[str, dict[str, float]] = {}

    async def parse_validate_cold() -> None:
        validate(schema, parse(POST), rules)

    async def parse_validate_cached() -> None:
        await prepare(schema, payload, limits)  # a cache hit after the first

    authn: Authenticator = services.authn
    header = f"Bearer {alice.token}"

    async def auth() -> None:
        await authn.from_headers(header, None)

    key = aead.new_key()
    context = aad.body_aad("event-id", "event-id", room.id, alice.id, 1)
    sealed = aead.seal(key, BODY.encode(), context)

    async def crypto() -> None:
        aead.open_sealed(key, aead.seal(key, BODY.encode(), context), context)

    bridge = services.bridge
    await bridge.call(
        lambda: bridge.js.add_stream(StreamConfig(name="BREAKDOWN", subjects=["bd.>"]))
    )
    event_bytes = b"x" * 400

    async def nats_round_trip() -> None:
        await bridge.publish("bd.x", event_bytes)

    posted: list[str] = []

    async def service_post() -> None:
        posted.append((await services.messaging.post(alice.id, room.id, BODY)).id)

    alice_ctx = RequestContext(
        services=services, auth=await authn.from_headers(header, None), transport="http"
    )

    async def graphql_post() -> None:
        ctx = attrs.evolve(alice_ctx)
        result = await execute(schema, ctx, await prepare(schema, payload, limits))
        assert "errors" not in result, result

    http = httpx.AsyncClient(base_url=running.http_url, timeout=30)

    async def http_post() -> None:
        r = await http.post("/api/graphql", json=payload, headers={"authorization": header})
        assert "errors" not in r.json(), r.text

    out["graphql_parse_validate_uncached"] = await timed(n, parse_validate_cold)
    out["graphql_parse_validate_cached"] = await timed(n, parse_validate_cached)
    out["auth_bearer"] = await timed(n, auth)
    out["crypto_seal_and_open"] = await timed(n, crypto)
    out["nats_publish_round_trip"] = await timed(n, nats_round_trip)
    out["post_via_service"] = await timed(n, service_post)

    async def healthz() -> None:
        await http.get("/healthz")

    out["post_via_graphql_execute"] = await timed(n, graphql_post)
    async with http:
        out["http_round_trip_healthz"] = await timed(n, healthz)
        out["post_via_http"] = await timed(n, http_post)
    out.update(await fan_out(services, schema, bob, room.id, posted[-1], n))
    del sealed
    return out


async def fan_out(
    services: Any, schema: Any, viewer: Any, room_id: str, event_id: str, n: int
) -> dict[str, dict[str, float]]:
    """One subscriber's share of one event: execute the document, or reuse the result."""
    record = services.directory.get(viewer.id)
    auth = await services.authn.from_headers(f"Bearer {viewer.token}", None)
    assert auth.user is not None and record is not None
    ctx = RequestContext(services=services, auth=auth, transport="ws")
    op = await prepare(schema, {"query": EVENTS}, services.config.graphql)
    executor = Executor.build(schema, op.document, None, ctx, None, None)
    assert not isinstance(executor, list)
    msg = services.messaging.rooms.messages[event_id]
    anchor = object()
    event = {
        "type": "MESSAGE_POSTED",
        "roomId": room_id,
        "eventId": event_id,
        "userId": msg.author_id,
        "message": msg,
        SHARE: anchor,
    }

    async def execute_per_subscriber() -> None:
        result = execute_subscription_event(executor.build_per_event_executor(event))
        if executor.is_awaitable(result):
            result = await result
        json.dumps({"data": result.data})  # type: ignore[union-attr]

    shared = SharedResults()
    shared.put(op.document, "k", anchor, '{"data":{}}')
    head = '{"id":"1","type":"next","payload":'

    async def reuse_shared() -> None:
        text = shared.get(op.document, "k", anchor)
        assert text is not None and ctx.is_authenticated()
        _frame = head + text + "}"

    return {
        "fanout_execute_per_subscriber": await timed(n, execute_per_subscriber),
        "fanout_shared_result": await timed(n, reuse_shared),
    }


async def run(n: int) -> dict[str, Any]:
    shutdown = trio.Event()
    with tempfile.TemporaryDirectory(prefix="chatto-breakdown-", ignore_cleanup_errors=True) as tmp:
        async with trio.open_nursery() as nursery:
            config = make_config(Path(tmp))
            # Thousands of posts by one user in a second: rate limits would refuse them.
            config = attrs.evolve(config, limits=attrs.evolve(config.limits, enabled=False))
            running: Running = await nursery.start(serve_chatto, config, shutdown)
            tune_gc()
            try:
                return await stages(running, n)
            finally:
                shutdown.set()
                nursery.cancel_scope.deadline = trio.current_time() + 10
    raise AssertionError("unreachable")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=2000, help="samples per stage")
    ap.add_argument("--json", type=Path, default=Path("bench-results/bench_breakdown.json"))
    args = ap.parse_args()
    results = trio.run(run, args.n)
    print(f"{'stage':<36} {'median us':>10} {'p99 us':>10}")
    for name, f in results.items():
        print(f"{name:<36} {f['median_us']:>10} {f['p99_us']:>10}")
    doc = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "samples_per_stage": args.n,
        "stages": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
