"""Benchmark: a process's memory and start time against the size of history (issue #22).

Starts an embedded nats-server in a temp dir and writes ``--events`` events
straight into ``EVT`` with ``bench_startup``'s generator (users, rooms of 20
members, messages with 10 % thread replies, reactions, edits), plus one big
room of ``--big-room`` messages (same mix) whose whole history is paged.
Every measurement runs in a fresh child process, so its RSS is the read
models' and nothing the writer left behind:

1. ``replay``: a full replay, then the projector snapshot is written;
   start seconds and peak RSS.
2. ``serve``: a start from that snapshot (seconds, RSS after start); the big
   room paged oldest to newest (``after`` cursors) and newest to oldest
   (``before`` cursors) through ``History`` (RSS after); then ``--readers``
   users each read the latest page of every room they are in (RSS after);
   page latency p50/p99 for hot pages (the room's newest ``--hot-pages``)
   and cold ones (all the others); then the big room again, both ways, each
   page read back from the stream by ``ColdReader`` (the cold path of issue
   #22: latency, stream reads, the bounded page cache, RSS after).

Figures are this machine's (2 shared cores). RSS is ``VmRSS`` from
``/proc/self/status``; peak is ``VmHWM``. Run:
``.venv/bin/python scripts/bench_memory.py --events 200000 --out mem-200k.json``
(``--smoke`` for the test's small run).
"""

from __future__ import annotations

import argparse
import gc
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio
from bench_startup import TOKEN, _blob, generate, publish_all, read_models, write_snapshot

from actors.events import EntityRef, Envelope, Event
from actors.hub import Hub
from actors.ids import new_id
from actors.kms.actor import Kms, register_kms
from actors.kms.records import BucketStore
from actors.projector import Projector
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import (
    MemberJoined,
    MessageEdited,
    MessagePosted,
    ReactionChanged,
    RoomCreated,
)
from actors.rooms.resident import PREFIX
from actors.runtime import RuntimeSettings, open_actor_system
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE, SNAPSHOTS, bootstrap_storage
from chatto.config_schema import CacheConfig
from chatto.crypto.master import new_master_key
from chatto.eventstore import JetStreamEventStore
from chatto.loadtest.report import write_report
from chatto.messaging.cold import ColdReader
from chatto.messaging.history import History, encode_cursor
from chatto.snapshot_store import NatsIndexObjects, NatsSnapshotStore
from chatto.tuning import tune_gc, tune_threads

BIG_ROOM = "bigroom0000000000000000000"
BIG_MEMBERS = 50


def rss_mb() -> dict[str, float]:
    """This process's resident set now and at its peak, in MB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mb" if key == "VmRSS" else "peak_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def big_room(messages: int, seed: int = 11) -> Iterator[Envelope]:
    """One room with ``messages`` messages: replies, reactions and edits land
    on messages of any age, so old pages carry late changes."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    members = [new_id() for _ in range(BIG_MEMBERS)]
    count = 0

    def env(event: Event) -> Envelope:
        nonlocal count
        count += 1
        return Envelope(new_id(), EntityRef("room", BIG_ROOM), now + count, event)

    yield env(RoomCreated("big", "history", "channel", members[0]))
    for uid in members:
        yield env(MemberJoined(uid))
    posted: list[str] = []
    while len(posted) < messages:
        author, roll = rng.choice(members), rng.random()
        # Half of the late changes aim at any message, half at recent ones.
        pool = posted if rng.random() < 0.5 else posted[-200:]
        if pool and roll < 0.08:
            ev: Event = ReactionChanged(
                rng.choice(pool), author, rng.choice(["tada", "eyes"]), True
            )
        elif pool and roll < 0.12:
            ev = MessageEdited(rng.choice(pool), author, _blob(rng, 80), 1)
        elif pool and roll < 0.22:
            ev = MessagePosted(author, _blob(rng, 80), 1, thread_root=rng.choice(pool))
        else:
            ev = MessagePosted(author, _blob(rng, 80), 1)
        e = env(ev)
        if isinstance(ev, MessagePosted) and not ev.thread_root:
            posted.append(e.id)
        yield e


# --- children ------------------------------------------------------------------------
async def _projector(
    bridge: NatsBridge, kms: Kms, snapshots: bool, args: argparse.Namespace
) -> tuple[float, Projector, RoomDirectory]:
    store = NatsSnapshotStore(bridge) if snapshots else None
    rooms = RoomDirectory(
        hot_messages=args.hot_messages,
        hot_rooms=args.hot_rooms,
        index_rooms=args.index_rooms,
        objects=NatsIndexObjects(bridge),
        index_bytes=args.index_mb << 20,  # the replay child writes them, serve reads them
    )
    models = [rooms if isinstance(m, RoomDirectory) else m for m in read_models(kms)]
    projector = Projector(JetStreamEventStore(bridge), models, Hub(), snapshots=store)
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        nursery.cancel_scope.cancel()
    return time.perf_counter() - t0, projector, rooms


def _ms(samples: list[float]) -> dict[str, float]:
    if not samples:
        return {"n": 0}
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "n": len(samples),
        "p50": round(statistics.median(ordered) * 1000, 3),
        "p99": round(p99 * 1000, 3),
    }


async def page_big_room(history: History, page: int, hot_pages: int) -> dict[str, Any]:
    """Both ways through the big room; per-page latency, hot vs cold."""
    hot: list[float] = []
    cold: list[float] = []
    pages = 0
    views = 0
    cursor: str | None = None
    backwards: list[float] = []
    while True:  # newest to oldest
        t0 = time.perf_counter()
        got = await history.page(BIG_ROOM, cursor, None, page)
        backwards.append(time.perf_counter() - t0)
        pages, views = pages + 1, views + len(got.events)
        if not got.has_older or not got.events:
            break
        cursor = encode_cursor(got.events[0].seq)
    total_pages = len(backwards)
    for i, seconds in enumerate(backwards):
        (hot if i < hot_pages else cold).append(seconds)
    cursor = encode_cursor(0)
    i = 0
    while True:  # oldest to newest
        t0 = time.perf_counter()
        got = await history.page(BIG_ROOM, None, cursor, page)
        seconds = time.perf_counter() - t0
        (hot if i >= total_pages - hot_pages else cold).append(seconds)
        pages, views, i = pages + 1, views + len(got.events), i + 1
        if not got.has_newer or not got.events:
            break
        cursor = encode_cursor(got.events[-1].seq)
    return {"pages": pages, "views": views, "hot_ms": _ms(hot), "cold_ms": _ms(cold)}


async def cold_big_room(history: History, cold: ColdReader, page: int) -> dict[str, Any]:
    """Both ways through the big room with every page read back from the stream."""
    samples: list[float] = []
    hits: list[float] = []
    views = 0
    cache = history.rooms.cold_pages
    for forwards in (False, True):
        cursor: str | None = encode_cursor(0) if forwards else None
        while True:
            if forwards:
                got = await history.page(BIG_ROOM, None, cursor, page)
            else:
                got = await history.page(BIG_ROOM, cursor, None, page)
            misses, t0 = cache.misses, time.perf_counter()
            read = await cold.views(BIG_ROOM, [v.seq for v in got.events])
            (samples if cache.misses > misses else hits).append(time.perf_counter() - t0)
            views += len(read)
            if not (got.has_newer if forwards else got.has_older) or not got.events:
                break
            cursor = encode_cursor((got.events[-1] if forwards else got.events[0]).seq)
    return {
        "views": views,
        "read_ms": _ms(samples),
        "cached_ms": _ms(hits),
        "stream_reads": cold.reads,
    }


async def readers_latest(
    rooms: RoomDirectory, history: History, readers: int, page: int
) -> dict[str, Any]:
    users = sorted(rooms.by_member)[:readers]
    samples = []
    for uid in users:
        for room_id in sorted(rooms.by_member[uid]):
            t0 = time.perf_counter()
            await history.page(room_id, None, None, page)
            samples.append(time.perf_counter() - t0)
    return {"readers": len(users), "latest_ms": _ms(samples)}


class LoopLag:
    """The longest the event loop went without running a 1 ms sleeper: what a
    phase (loading a big index, a reader's first page) held the loop."""

    def __init__(self) -> None:
        self.max_s = 0.0

    async def run(self) -> None:
        while True:
            t0 = time.perf_counter()
            await trio.sleep(0.001)
            self.max_s = max(self.max_s, time.perf_counter() - t0 - 0.001)

    def take_ms(self) -> float:
        out, self.max_s = round(self.max_s * 1000, 1), 0.0
        return out


async def child(args: argparse.Namespace) -> dict[str, Any]:
    settings = NatsSettings(args.nats_url, token=TOKEN, request_timeout=30)
    async with (
        open_nats_bridge(settings) as bridge,
        open_actor_system(RuntimeSettings()) as actors,
    ):
        register_kms(
            actors,
            BucketStore(bridge, ENCRYPTION_KEYS),
            BucketStore(bridge, RUNTIME_STATE),
            new_master_key(),
        )
        kms = Kms(actors)
        gc.collect()
        base = rss_mb()
        if args.child == "replay":
            seconds, projector, _ = await _projector(bridge, kms, False, args)
            out: dict[str, Any] = {"start_s": round(seconds, 3), "after_start": rss_mb()}
            out["snapshot"] = await write_snapshot(bridge, projector)
            out["after_snapshot"] = rss_mb()
            out["index_objects"] = await index_objects(bridge)
            return out
        seconds, projector, rooms = await _projector(bridge, kms, True, args)
        assert projector.restored_seq > 0, "the snapshot was not used"
        gc.collect()
        cold = ColdReader(bridge, rooms)
        history = History(rooms, cold)
        out = {"baseline": base, "start_s": round(seconds, 3), "after_start": rss_mb()}
        out["hot_window_after_start"] = rooms.cache_statistics()
        lag = LoopLag()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(lag.run)
            out["big_room"] = await page_big_room(history, args.page, args.hot_pages)
            out["big_room"]["max_loop_stall_ms"] = lag.take_ms()
            gc.collect()
            out["after_paging_big_room"] = rss_mb()
            lag.take_ms()
            out["cold_path"] = await cold_big_room(history, cold, args.page)
            out["cold_path"]["max_loop_stall_ms"] = lag.take_ms()
            out["cold_path"]["cache"] = rooms.cache_statistics()
            gc.collect()
            out["after_cold_paging"] = rss_mb()
            lag.take_ms()
            out["readers"] = await readers_latest(rooms, history, args.readers, args.page)
            out["readers"]["max_loop_stall_ms"] = lag.take_ms()
            gc.collect()
            out["after_readers"] = rss_mb()
            out["cache_after_readers"] = rooms.cache_statistics()
            nursery.cancel_scope.cancel()
        return out


async def index_objects(bridge: NatsBridge) -> dict[str, int]:
    """The rooms' history index objects in the snapshot store: count and bytes."""
    js = bridge.js

    async def sizes() -> list[int]:
        store = await js.object_store(SNAPSHOTS)
        infos = await store.list(ignore_deletes=True)
        return [int(i.size or 0) for i in infos if (i.name or "").startswith(PREFIX)]

    found = await bridge.call(sizes)
    return {"count": len(found), "bytes": sum(found)}


def run_child(args: argparse.Namespace, url: str, phase: str) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", phase, "--nats-url", url]
    cmd += ["--page", str(args.page), "--hot-pages", str(args.hot_pages)]
    cmd += ["--readers", str(args.readers)]
    cmd += ["--hot-messages", str(args.hot_messages), "--hot-rooms", str(args.hot_rooms)]
    cmd += ["--index-rooms", str(args.index_rooms), "--index-mb", str(args.index_mb)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"child {phase} failed:\n{proc.stderr[-4000:]}")
    result: dict[str, Any] = json.loads(proc.stdout)
    return result


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatto-bench-memory-") as tmp:
        settings = EmbeddedSettings("127.0.0.1", 0, Path(tmp) / "nats", TOKEN)
        async with (
            open_embedded_nats(settings) as nats,
            open_nats_bridge(NatsSettings(nats.url, token=TOKEN, request_timeout=30)) as bridge,
        ):
            await bootstrap_storage(bridge)
            rest = max(1000, args.events - args.big_room)
            print(f"writing {rest:,} + big room {args.big_room:,}", file=sys.stderr)
            rate = await publish_all(bridge, generate(rest, community=args.community), rest)
            await publish_all(bridge, big_room(args.big_room), args.big_room)
            head = await JetStreamEventStore(bridge).head()
            replay = await trio.to_thread.run_sync(run_child, args, nats.url, "replay")
            serve = await trio.to_thread.run_sync(run_child, args, nats.url, "serve")
            return {
                "design": args.design,
                "hot_messages": args.hot_messages,
                "hot_rooms": args.hot_rooms,
                "index_rooms": args.index_rooms,
                "index_mb": args.index_mb,
                "community_of_events": args.community or args.events,
                "events": head,
                "big_room_messages": args.big_room,
                "write_events_per_s": round(rate),
                "full_replay": replay,
                "from_snapshot": serve,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--big-room", type=int, default=None, help="messages in the paged room")
    parser.add_argument("--readers", type=int, default=500)
    parser.add_argument("--page", type=int, default=50)
    parser.add_argument("--hot-pages", type=int, default=4)
    parser.add_argument("--design", default="hot-window", help="label in the report")
    # Defaults: the server's ([cache] in chatto.toml).
    cache = CacheConfig()
    parser.add_argument(
        "--hot-messages",
        type=int,
        default=cache.hot_messages,
        help="[cache] hot_messages (0: keep every view)",
    )
    parser.add_argument("--hot-rooms", type=int, default=cache.hot_rooms, help="[cache] hot_rooms")
    parser.add_argument(
        "--index-rooms", type=int, default=cache.index_rooms, help="[cache] index_rooms"
    )
    parser.add_argument("--index-mb", type=int, default=cache.index_mb, help="[cache] index_mb")
    parser.add_argument(
        "--community",
        type=int,
        default=0,
        help="size users and rooms as for this many events (default: --events): "
        "the same community with a longer history",
    )
    parser.add_argument("--smoke", action="store_true", help="small numbers for the test")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--child", choices=["replay", "serve"], default=None)
    parser.add_argument("--nats-url", default="")
    args = parser.parse_args()
    if args.child:
        tune_gc()  # as `chatto run` does: the loop stalls are the server's
        tune_threads()
        print(json.dumps(trio.run(child, args)))
        return
    if args.smoke:
        args.events, args.big_room, args.readers = 4000, 1000, 20
    if args.big_room is None:
        args.big_room = min(100_000, args.events // 5)
    result = trio.run(bench, args)
    write_report(result, args.out)


if __name__ == "__main__":
    main()
