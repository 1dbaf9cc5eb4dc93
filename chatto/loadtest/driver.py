"""The load test: one nursery owns the server(s), the sink, the clients and the load.

Order: start or reach the target -> prepare users and rooms -> connect
every client (each reports started once subscribed) -> offer posts on a
fixed schedule (slow answers never slow the schedule, up to the in-flight
bound) while churners reconnect -> drain until every acknowledged message
reached every member of its room (live, or resumed after a reconnect) or
the drain time ends -> report. Every loop is bounded in count and time.
"""

from __future__ import annotations

import json
import random
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from chatto.loadtest import report
from chatto.loadtest.accounts import VUser, prepare_rooms, prepare_users
from chatto.loadtest.clients import (
    ChurnWindow,
    ClientState,
    receipt_summary,
    request_on_socket,
    run_client,
)
from chatto.loadtest.params import Params
from chatto.loadtest.smtp_sink import SmtpSink
from chatto.loadtest.target import Sampler, Target, hub_counters, start_own
from chatto.tuning import tune_gc

POST = """mutation($r: ID!, $b: String!, $c: String) {
  postMessage(roomId: $r, body: $b, clientMessageId: $c) { id } }"""
HTTP_CLIENTS_PER_TARGET = 16
HTTP_CONNECTIONS_EACH = 8
HTTP_TIMEOUT = 30.0
CONNECT_CONCURRENCY = 32
PROGRESS_SECONDS = 2.0
WARMUP_SECONDS = 5
EXAMPLES = 5


@attrs.frozen
class Post:
    room_id: str
    sent: float
    acked: float


@attrs.define
class PostLog:
    acked: dict[str, Post] = attrs.Factory(dict)
    failures: Counter[str] = attrs.Factory(Counter)
    attempted: int = 0
    offered_seconds: float = 0.0
    completed_seconds: float = 0.0
    max_late: float = 0.0
    bound_waits: int = 0
    started: float = 0.0
    http_fallbacks: int = 0  # socket posts sent again over HTTP (the socket went first)


def _failure_kind(status: int, doc: Any) -> str:
    if isinstance(doc, dict) and doc.get("errors"):
        code = (doc["errors"][0].get("extensions") or {}).get("code", "?")
        return f"graphql {code}"
    return f"HTTP {status}"


async def _post(
    http: httpx.AsyncClient,
    state: ClientState,
    n: int,
    log: PostLog,
    slot: trio.Semaphore,
    via_socket: bool,
) -> None:
    """One post, on the poster's live socket or over HTTP, as a client sends it.

    A post whose socket went before the answer is sent again over HTTP with
    the same clientMessageId (the server stores it once), as the web client
    does; the retry is counted.
    """
    user = state.user
    variables = {"r": user.room_id, "b": f"load test message {n}", "c": f"lt-{n}"}
    body = {"query": POST, "variables": variables}
    sent = trio.current_time()
    status = 200
    try:
        doc = await request_on_socket(state, f"p{n}", body) if via_socket else None
        if doc is None:
            if via_socket:
                log.http_fallbacks += 1
            headers = {"authorization": f"Bearer {user.token}"}
            r = await http.post("/api/graphql", json=body, headers=headers)
            status, doc = r.status_code, r.json()
        acked = trio.current_time()
    except (httpx.HTTPError, ValueError) as exc:
        log.failures[type(exc).__name__] += 1
        return
    finally:
        slot.release()
    if status != 200 or not isinstance(doc, dict) or doc.get("errors"):
        log.failures[_failure_kind(status, doc)] += 1
        return
    log.acked[doc["data"]["postMessage"]["id"]] = Post(user.room_id, sent, acked)


async def offer(
    https: list[httpx.AsyncClient],
    states: dict[int, ClientState],
    users: list[VUser],
    params: Params,
    log: PostLog,
) -> None:
    """Start ``total_posts`` posts at ``rate``, round-robin over the posters."""
    if params.posters:
        users = users[: params.posters]
    slot = trio.Semaphore(params.in_flight)
    start = log.started = trio.current_time()
    async with trio.open_nursery() as nursery:
        for n in range(params.total_posts):
            due = start + n / params.rate
            await trio.sleep_until(due)
            if slot.value == 0:
                log.bound_waits += 1
            await slot.acquire()
            log.max_late = max(log.max_late, trio.current_time() - due)
            user = users[n % len(users)]
            http = https[user.index % len(https)]
            via_socket = params.post_via == "ws"
            nursery.start_soon(_post, http, states[user.index], n, log, slot, via_socket)
            log.attempted += 1
        log.offered_seconds = trio.current_time() - start + 1 / params.rate
    log.completed_seconds = max(trio.current_time() - start, log.offered_seconds)


def _missing(log: PostLog, states: dict[int, ClientState]) -> tuple[int, int, list[str]]:
    """(expected, missing, examples) over every (acked message, room member) pair."""
    by_room: dict[str, list[str]] = {}
    for eid, post in log.acked.items():
        by_room.setdefault(post.room_id, []).append(eid)
    expected = missing = 0
    examples: list[str] = []
    for s in states.values():
        ids = by_room.get(s.user.room_id, [])
        expected += len(ids)
        for eid in ids:
            if not s.has(eid):
                missing += 1
                if len(examples) < EXAMPLES:
                    examples.append(f"{eid} -> {s.user.login}")
    return expected, missing, examples


async def drain(log: PostLog, states: dict[int, ClientState], seconds: float) -> float:
    t0 = trio.current_time()
    with trio.move_on_after(seconds):
        # Polling: receipts land in hundreds of tasks; one check per half second is cheap.
        while _missing(log, states)[1]:  # noqa: ASYNC110
            await trio.sleep(0.5)
    return trio.current_time() - t0


def delivery(log: PostLog, states: dict[int, ClientState]) -> tuple[dict[str, Any], list[float]]:
    expected, missing, examples = _missing(log, states)
    latencies: list[float] = []
    steady: list[float] = []
    per_second: dict[int, list[float]] = {}
    resumed = 0
    for s in states.values():
        for eid, post in log.acked.items():
            if post.room_id != s.user.room_id:
                continue
            got = s.live.get(eid)
            if got is not None:
                latencies.append(got - post.sent)
                second = int(post.sent - log.started)
                per_second.setdefault(second, []).append(got - post.sent)
                if second >= WARMUP_SECONDS:
                    steady.append(got - post.sent)
            elif eid in s.resumed:
                resumed += 1
    # A message that arrived live but that no post was answered with: a post
    # stored twice (a retry the server did not recognise), or an answer lost.
    unacked = {e for s in states.values() for e in s.live if e not in log.acked}
    return {
        "expected": expected,
        "unacked": len(unacked),
        "live": len(latencies),
        "resumed": resumed,
        "lost": missing,
        "lost_examples": examples,
        "latency": report.latency_ms(latencies),
        # Every user's first message creates their body key (an extra append
        # and a KMS wrap): with 500 users at 200/s that is the first 2.5 s.
        "warmup_seconds": WARMUP_SECONDS,
        "latency_after_warmup": report.latency_ms(steady),
        # By the second the message was posted: periodic stalls vs a growing backlog.
        "p99_ms_by_second": [
            round(report.percentile(per_second[k], 0.99) * 1000, 1) for k in sorted(per_second)
        ],
    }, latencies


async def progress(
    log: PostLog, states: dict[int, ClientState], sampler: Sampler, t0: float
) -> None:
    while True:
        await trio.sleep(PROGRESS_SECONDS)
        live = sum(len(s.live) for s in states.values())
        up = sum(s.connected for s in states.values())
        print(
            f"  {trio.current_time() - t0:6.1f}s  posted {log.attempted}  acked {len(log.acked)}"
            f"  failed {sum(log.failures.values())}  live deliveries {live}"
            f"  connected {up}/{len(states)}  server CPU {sampler.latest_cpu():.0f}%"
            f"  RSS {sampler.latest_rss():.0f} MiB",
            file=sys.stderr,
        )


SETTLE_CPU = 15.0
SETTLE_SECONDS = 60.0


async def settle(sampler: Sampler) -> float | None:
    """Wait (bounded) until the server is quiet: connection storms are not the load."""
    if not sampler.series:
        return None
    t0 = trio.current_time()
    quiet = 0
    with trio.move_on_after(SETTLE_SECONDS):
        while quiet < 2:
            await trio.sleep(1.0)
            quiet = quiet + 1 if sampler.latest_cpu() < SETTLE_CPU else 0
    return trio.current_time() - t0


def _say(params: Params, text: str) -> None:
    if not params.quiet:
        print(f"loadtest: {text}", file=sys.stderr)


async def connect_all(
    nursery: trio.Nursery,
    targets: list[str],
    https: list[httpx.AsyncClient],
    users: list[VUser],
    params: Params,
    window: ChurnWindow,
) -> dict[int, ClientState]:
    rng = random.Random(1)
    churners = set(rng.sample(range(len(users)), round(params.churn * len(users))))
    states = {u.index: ClientState(u, shape=params.shape) for u in users}
    limiter = trio.CapacityLimiter(CONNECT_CONCURRENCY)

    async def start_one(u: VUser) -> None:
        async with limiter:
            base = targets[u.index % len(targets)]
            ws_url = base.replace("http://", "ws://").replace("https://", "wss://")
            churn = params.churn_seconds if u.index in churners else None
            await nursery.start(
                run_client,
                ws_url + "/api/graphql",
                https[u.index % len(https)],
                states[u.index],
                window,
                churn,
                random.Random(u.index),
            )

    async with trio.open_nursery() as starters:
        for u in users:
            starters.start_soon(start_one, u)
    return states


async def run(params: Params) -> dict[str, Any]:
    with (
        tempfile.TemporaryDirectory(prefix="chatto-loadtest-", ignore_cleanup_errors=True) as tmp,
        trio.fail_after(params.deadline),
    ):
        async with trio.open_nursery() as nursery:
            try:
                return await _run(nursery, params, Path(tmp))
            finally:
                nursery.cancel_scope.cancel()
    raise AssertionError("unreachable")  # pragma: no cover


async def _run(nursery: trio.Nursery, params: Params, tmp: Path) -> dict[str, Any]:
    sink: SmtpSink | None = None
    if not params.url or params.smtp_port:
        sink = SmtpSink(port=params.smtp_port)
        await nursery.start(sink.serve)
    if params.url:
        target = Target(urls=[params.url.rstrip("/")])
        if params.server_pid:
            target.pids.append(params.server_pid)
    else:
        _say(params, f"starting {params.processes} server process(es)")
        assert sink is not None
        target = await start_own(nursery, params, tmp, sink.port)
    sampler = Sampler()
    sampler.watch(target.pids)
    nursery.start_soon(sampler.run)
    # Idle connections are dropped before the server's 5 s keep-alive ends, so a
    # request never races the server closing the connection it was sent on.
    limits = httpx.Limits(max_connections=HTTP_CONNECTIONS_EACH, keepalive_expiry=2.0)
    # Client j talks to target j % len(urls), so user i's client (i % len) and
    # WebSocket (i % len(urls)) reach the same process. Many small pools: one
    # pool scans all its connections for every queued request (quadratic).
    urls = target.urls
    https = [
        httpx.AsyncClient(base_url=urls[j % len(urls)], limits=limits, timeout=HTTP_TIMEOUT)
        for j in range(HTTP_CLIENTS_PER_TARGET * len(urls))
    ]
    try:
        return await _load(nursery, params, target, https, sink, sampler)
    finally:
        with trio.CancelScope(shield=True):
            for h in https:
                await h.aclose()


async def _load(
    nursery: trio.Nursery,
    params: Params,
    target: Target,
    https: list[httpx.AsyncClient],
    sink: SmtpSink | None,
    sampler: Sampler,
) -> dict[str, Any]:
    t_setup = trio.current_time()
    state = params.state if params.url else None
    users = await prepare_users(https[0], sink, params.users, params.password, state)
    await prepare_rooms(https[0], users, params.rooms)
    _say(params, f"{len(users)} users in {params.rooms} rooms ready")
    window = ChurnWindow()
    async with trio.open_nursery() as clients:
        states = await connect_all(clients, target.urls, https, users, params, window)
        settled = await settle(sampler)
        setup_s = trio.current_time() - t_setup
        if settled is not None:
            _say(params, f"server settled ({settled:.1f}s after the last subscription)")
        _say(params, f"{len(states)} clients subscribed; setup took {setup_s:.1f}s")
        for s in states.values():
            s.live.clear()  # only this run's messages count
        sampler.reset()
        # The generator's own heap grows with every receipt; without this its
        # full collections (tens of ms at 300k receipts) showed up as delivery
        # latency. Same tuning as the server.
        tune_gc()
        log = PostLog()
        t0, cpu0 = trio.current_time(), time.process_time()
        window.end = t0 + params.offered_seconds
        async with trio.open_nursery() as watch:
            if not params.quiet:
                watch.start_soon(progress, log, states, sampler, t0)
            await offer(https, states, users, params, log)
            drained = await drain(log, states, params.drain_seconds)
            hub = await hub_counters(target.urls)
            watch.cancel_scope.cancel()
        loadgen_cpu = 100 * (time.process_time() - cpu0) / max(trio.current_time() - t0, 1e-9)
        clients.cancel_scope.cancel()
    deliv, latencies = delivery(log, states)
    deliv["drain_wait_s"] = round(drained, 2)
    out: dict[str, Any] = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "target": "own: " + ", ".join(target.urls) if not params.url else params.url,
        "parameters": _parameters(params),
        "machine": report.machine(),
        "setup_seconds": round(setup_s, 1),
        "posts": {
            "attempted": log.attempted,
            "acked": len(log.acked),
            "failed": sum(log.failures.values()),
            "failures_by_kind": dict(log.failures),
            "via": params.post_via,
            "sent_again_over_http": log.http_fallbacks,
            "offered_per_s": round(log.attempted / max(log.offered_seconds, 1e-9), 1),
            "achieved_per_s": round(len(log.acked) / max(log.completed_seconds, 1e-9), 1),
            "completed_seconds": round(log.completed_seconds, 2),
            "max_start_late_ms": round(log.max_late * 1000, 1),
            "in_flight_bound_waits": log.bound_waits,
            "ack_latency": report.latency_ms([p.acked - p.sent for p in log.acked.values()]),
        },
        "delivery": deliv,
        "clients": receipt_summary(states),
        "server": {
            f"{s.name}[{s.pid}]": {
                "cpu_percent": report.series_summary(s.cpu_percent),
                "rss_mib": report.series_summary(s.rss_mib),
            }
            for s in sampler.series.values()
        },
        "loadgen_cpu_percent": round(loadgen_cpu),
        # How many live deliveries the servers' fast lane wrote (chatto/gql/live_fast.py).
        "hub": hub,
    }
    out["problems"] = report.verdict(out)
    out["_latencies"] = latencies
    return out


def _parameters(params: Params) -> dict[str, Any]:
    """The run's parameters as JSON (the password left out)."""
    raw = attrs.asdict(params)
    raw.pop("password")
    return {k: str(v) if isinstance(v, Path) else v for k, v in raw.items()}


def write(result: dict[str, Any], params: Params) -> list[Path]:
    latencies = result.pop("_latencies")
    params.out.parent.mkdir(parents=True, exist_ok=True)
    params.out.write_text(json.dumps(result, indent=2) + "\n")
    md = params.out.with_suffix(".md")
    md.write_text(report.markdown(result))
    written = [params.out, md]
    if params.chart:
        png = params.out.with_suffix(".png")
        title = (
            f"{params.users} clients, {params.rooms} rooms, {params.rate:g} posts/s: "
            f"p99 {result['delivery']['latency']['p99_ms']} ms"
        )
        report.chart(latencies, png, title)
        written.append(png)
    return written


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for sub in exc.exceptions for leaf in _leaves(sub)]
    return [exc]


def main(argv: list[str] | None = None) -> int:
    from chatto.loadtest.params import parse

    params = parse(argv)
    result: dict[str, Any] = {}
    try:
        result = trio.run(run, params)
    except* Exception as group:
        for exc in _leaves(group):
            print(f"loadtest: aborted: {type(exc).__name__}: {exc}", file=sys.stderr)
    if not result:
        return 2
    written = write(result, params)
    sys.stdout.write(report.markdown(result))
    print("written: " + ", ".join(str(p) for p in written))
    for why in result["problems"]:
        print(f"loadtest: FAIL: {why}", file=sys.stderr)
    return 1 if result["problems"] else 0
