"""Benchmark: server CPU per post and per delivered live frame, and the floors.

Starts a real ``chatto run`` process (embedded NATS, rate limits off), puts
``--subscribers`` users in one room and measures the server process's CPU
time (``/proc/<pid>/stat``, so a busy machine stretches wall time, not the
figure) over ``--posts`` posts in each phase:

1. ``http_no_subscribers``  posts over HTTP, nobody subscribed
2. ``ws_no_subscribers``    the same mutation over the poster's
   already-authenticated WebSocket (graphql-transport-ws ``subscribe`` with
   a mutation: no HTTP framing, no per-request credential lookup)
3. ``http_subscribed``      posts over HTTP, every member subscribed to
   ``myEvents { type roomId eventId message { id body author { id } } }``
   (what a chat client needs)
4. ``ws_subscribed``        phase 3 with the posts on the poster's socket

Per post = phase CPU / posts; per delivered frame = (phase 3 - phase 1) /
(posts x subscribers) and (phase 4 - phase 2) / (posts x subscribers), i.e.
the frame's write plus its share of the one execution per event. Phase 3 also reports delivery latency (post sent ->
frame received, wall clock: noisy here). The floors, in the same run:
``raw_ws_frame`` (wsproto-encoding one text frame of the same size and one
``send`` on a socketpair, per frame, and 20 frames per ``send``) and
``raw_acked_publish`` (nats-py, one JetStream publish awaited at a time,
to its own nats-server; ``bench_bridge.py``'s raw phase).

Run: ``.venv/bin/python scripts/bench_fanout.py [--subscribers 50 --posts 400]``
(``--smoke`` for CI). JSON to stdout and ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
import trio
from bench_bridge import Params as BridgeParams
from bench_bridge import create_stream, run_raw, running_server
from trio_websocket import WebSocketConnection, open_websocket_url
from wsproto.frame_protocol import FrameProtocol

from chatto.loadtest.accounts import VUser, prepare_rooms, prepare_users
from chatto.loadtest.clients import MY_EVENTS_FULL
from chatto.loadtest.params import Params
from chatto.loadtest.report import percentile, write_report
from chatto.loadtest.smtp_sink import SmtpSink
from chatto.loadtest.target import TICK, _cpu_ticks, hub_counters, start_own

POST = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
BODY = "a message of a realistic length, about as long as most chat lines are"


async def _init(ws: WebSocketConnection, token: str) -> None:
    init = {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
    await ws.send_message(json.dumps(init))
    ack = json.loads(await ws.get_message())
    if ack.get("type") != "connection_ack":
        raise RuntimeError(f"no connection_ack: {ack}")


class Subscriber:
    """One member's myEvents socket: receive time by event id."""

    def __init__(self) -> None:
        self.got: dict[str, float] = {}

    async def run(self, url: str, token: str, *, task_status: Any) -> None:
        async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
            await _init(ws, token)
            sub = {"id": "1", "type": "subscribe", "payload": {"query": MY_EVENTS_FULL}}
            await ws.send_message(json.dumps(sub))
            await ws.get_message()  # own PRESENCE: subscribed
            task_status.started()
            while True:
                msg = json.loads(await ws.get_message())
                if msg.get("type") == "ping":
                    await ws.send_message('{"type":"pong"}')
                    continue
                ev = msg.get("payload", {}).get("data", {}).get("myEvents") or {}
                if ev.get("type") == "MESSAGE_POSTED" and (ev.get("message") or {}).get("body"):
                    self.got.setdefault(ev["eventId"], trio.current_time())


async def _posts_http(
    http: httpx.AsyncClient, user: VUser, n: int, flight: int
) -> dict[str, float]:
    sent: dict[str, float] = {}
    limiter = trio.CapacityLimiter(flight)

    async def one(i: int) -> None:
        async with limiter:
            t = trio.current_time()
            body = {"query": POST, "variables": {"r": user.room_id, "b": f"{BODY} {i}"}}
            r = await http.post(
                "/api/graphql", json=body, headers={"authorization": f"Bearer {user.token}"}
            )
            sent[r.json()["data"]["postMessage"]["id"]] = t

    async with trio.open_nursery() as nursery:
        for i in range(n):
            nursery.start_soon(one, i)
    return sent


async def _posts_ws(url: str, user: VUser, n: int, flight: int) -> None:
    """``n`` postMessage mutations over one socket, ``flight`` outstanding at most."""
    async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
        await _init(ws, user.token)
        done = 0
        sent = 0
        while done < n:
            while sent < n and sent - done < flight:
                payload = {"query": POST, "variables": {"r": user.room_id, "b": f"{BODY} {sent}"}}
                await ws.send_message(
                    json.dumps({"id": f"p{sent}", "type": "subscribe", "payload": payload})
                )
                sent += 1
            msg = json.loads(await ws.get_message())
            if msg.get("type") == "next" and msg["payload"].get("errors"):
                raise RuntimeError(f"post failed: {msg['payload']['errors']}")
            if msg.get("type") == "complete":
                done += 1


def _cpu(pid: int) -> float:
    return _cpu_ticks(pid) / TICK


async def _phase(pid: int, work: Any) -> tuple[float, Any]:
    await trio.sleep(1.0)  # let the previous phase's tail settle
    c0 = _cpu(pid)
    out = await work()
    await trio.sleep(0.5)  # deliveries still being written count too
    return _cpu(pid) - c0, out


async def measure(args: argparse.Namespace) -> dict[str, Any]:
    n_sub, n_posts = args.subscribers, args.posts
    with tempfile.TemporaryDirectory(prefix="chatto-fanout-") as tmp:
        async with trio.open_nursery() as nursery:
            sink = SmtpSink()
            await nursery.start(sink.serve)
            params = Params(users=n_sub, rooms=1, bcrypt_cost=4)
            target = await start_own(nursery, params, Path(tmp), sink.port)
            url, pid = target.urls[0], target.pids[0]
            ws_url = url.replace("http://", "ws://") + "/api/graphql"
            # Idle connections go before the server's 5 s keep-alive ends, so a
            # request never races the server closing its connection.
            limits = httpx.Limits(keepalive_expiry=2.0)
            async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as http:
                users = await prepare_users(http, sink, n_sub, "fan-out bench password", None)
                await prepare_rooms(http, users, 1)
                poster, flight = users[0], args.in_flight
                await _posts_http(http, poster, 20, flight)  # warm-up: keys, caches
                http_cpu, _ = await _phase(pid, lambda: _posts_http(http, poster, n_posts, flight))
                ws_cpu, _ = await _phase(pid, lambda: _posts_ws(ws_url, poster, n_posts, flight))
                subs = [Subscriber() for _ in users]
                async with trio.open_nursery() as clients:
                    for s, u in zip(subs, users, strict=True):
                        await clients.start(s.run, ws_url, u.token)
                    await _posts_http(http, poster, 20, flight)
                    sub_cpu, sent = await _phase(
                        pid, lambda: _posts_http(http, poster, n_posts, flight)
                    )
                    with trio.move_on_after(30):
                        while any(len(s.got) < len(sent) + 20 for s in subs):
                            await trio.sleep(0.1)
                    ws_sub_cpu, _ = await _phase(
                        pid, lambda: _posts_ws(ws_url, poster, n_posts, flight)
                    )
                    clients.cancel_scope.cancel()
                hub = await hub_counters([url])
            nursery.cancel_scope.cancel()
    lat = [s.got[e] - t for s in subs for e, t in sent.items() if e in s.got]
    frames = n_posts * n_sub
    return {
        "subscribers": n_sub,
        "posts_per_phase": n_posts,
        "in_flight": args.in_flight,
        "server_cpu_us_per_post": {
            "http": round(http_cpu / n_posts * 1e6, 1),
            "ws": round(ws_cpu / n_posts * 1e6, 1),
        },
        "server_cpu_us_per_delivered_frame": round((sub_cpu - http_cpu) / frames * 1e6, 1),
        # The same with the posts on the poster's socket (as the web client
        # sends them): posts come faster, so a socket more often has several
        # frames waiting for one write.
        "server_cpu_us_per_delivered_frame_ws_posts": round(
            (ws_sub_cpu - ws_cpu) / frames * 1e6, 1
        ),
        # Live deliveries over the whole run, and how many the fast lane wrote.
        "hub": hub,
        "frames_expected": frames,
        "frames_received": len(lat),
        "delivery_ms": {
            "p50": round(percentile(lat, 0.5) * 1000, 1),
            "p99": round(percentile(lat, 0.99) * 1000, 1),
        },
    }


def raw_ws_frame(size: int, frames: int) -> dict[str, float]:
    """CPU per frame: wsproto encode + one send each, and 20 frames per send."""
    a, b = socket.socketpair()
    stop = threading.Event()

    def drain() -> None:
        while not stop.is_set():
            if not b.recv(1 << 20):
                return

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proto = FrameProtocol(client=False, extensions=[])
    text = "x" * size
    out: dict[str, float] = {}
    try:
        t0 = time.thread_time()
        for _ in range(frames):
            a.sendall(proto.send_data(text, fin=True))
        out["us_per_frame_one_send_each"] = round((time.thread_time() - t0) / frames * 1e6, 2)
        t0 = time.thread_time()
        for _ in range(frames // 20):
            a.sendall(b"".join(proto.send_data(text, fin=True) for _ in range(20)))
        out["us_per_frame_20_per_send"] = round((time.thread_time() - t0) / frames * 1e6, 2)
    finally:
        stop.set()
        a.close()
        reader.join(2)
        b.close()
    return out


def raw_acked_publish(messages: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="chatto-fanout-nats-") as tmp:
        token = os.urandom(16).hex()
        with running_server(Path(tmp), token) as url:
            asyncio.run(create_stream(url, token))
            bp = BridgeParams(messages, 1, 300, 200, 1, False)
            seq = asyncio.run(run_raw(url, token, bp))[0]
    return {
        "p50_ms": round(seq.p50_ms, 3),
        "p99_ms": round(seq.p99_ms, 3),
        "msgs_per_s": round(seq.msgs_per_s),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--subscribers", type=int, default=50)
    p.add_argument("--posts", type=int, default=400)
    p.add_argument("--in-flight", type=int, default=8)
    p.add_argument("--smoke", action="store_true", help="tiny, for CI")
    p.add_argument("--out", type=Path, default=Path("bench-results/fanout.json"))
    args = p.parse_args()
    if args.smoke:
        args.subscribers, args.posts = 4, 20
    result = trio.run(measure, args)
    frame_size = len(json.dumps({"id": "1", "type": "next", "payload": {"data": {}}})) + 250
    result["floors"] = {
        "raw_ws_frame": raw_ws_frame(frame_size, 2_000 if args.smoke else 50_000),
        "raw_acked_publish": raw_acked_publish(200 if args.smoke else 2_000),
    }
    result["median_note"] = "CPU time of the server process; one run"
    write_report(result, args.out)
    ok = result["frames_received"] == result["frames_expected"]
    if not ok:
        print("bench_fanout: frames missing", file=sys.stderr)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
