"""Benchmark: projector start time, full replay vs start from a snapshot.

Starts an embedded nats-server in a temp dir, writes ``--events`` realistic
events straight into ``EVT`` (encoded with the project's codec and envelope
types, many publishes in flight): users (registration with sealed-looking
PII blobs, password hash), rooms with members, and room traffic — messages
(10 % thread replies), reactions and edits — spread over many rooms. Then:

1. a full replay (the same read models as the server: server profile, user
   directory, room directory, RBAC), which also writes the snapshot (export
   and encode in worker threads, object-store put: each timed, plus the
   longest event-loop stall meanwhile);
2. ``--tail`` more events after the snapshot;
3. ``--runs`` starts with full replay and ``--runs`` starts from the
   snapshot (restore + replay of the tail), median and every run reported.

Limits: users have no DEK events (no KMS keys exist), so the directory
cannot open their PII, exactly as after a crypto-shred; message bodies are
random bytes shaped like sealed bodies (the projector never opens them).

Run: ``.venv/bin/python scripts/bench_startup.py --events 1000000 --out startup.json``
(``--events 20000 --runs 1`` for a quick smoke run).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import trio

from actors.events import EntityRef, Envelope, Event
from actors.hub import Hub
from actors.ids import new_id
from actors.kms.actor import Kms, register_kms
from actors.kms.records import BucketStore
from actors.projector import Projector, ReadModel
from actors.rbac import RbacView
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import (
    MemberJoined,
    MessageEdited,
    MessagePosted,
    ReactionChanged,
    RoomCreated,
)
from actors.runtime import RuntimeSettings, open_actor_system
from actors.server import ServerView
from actors.snapshot import encode_snapshot
from actors.users.directory import UserDirectory
from actors.users.events import PasswordSet, UserRegistered
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE, bootstrap_storage
from chatto.codec import encode_envelope, subject_for
from chatto.crypto.master import new_master_key
from chatto.eventstore import JetStreamEventStore
from chatto.loadtest.report import write_report
from chatto.snapshot_store import NatsSnapshotStore

TOKEN = "bench-startup-token-0123456789"
IN_FLIGHT = 2000
MEMBERS_PER_ROOM = 20


def _blob(rng: random.Random, size: int) -> str:
    """Random bytes shaped like a sealed field (version, nonce, ciphertext, tag)."""
    return base64.urlsafe_b64encode(b"\x02" + rng.randbytes(24 + size + 16)).decode()


def generate(total: int, seed: int = 7, community: int = 0) -> Iterator[Envelope]:
    """``total`` events: users, rooms with members, then room traffic. The
    community (users and rooms) is sized for ``community`` events (default:
    ``total``), so a longer history of the same community can be made."""
    rng = random.Random(seed)
    now = int(time.time() * 1000)
    size = community or total
    users = [new_id() for _ in range(max(10, size // 500))]
    rooms = [new_id() for _ in range(max(2, size // 1000))]
    count = 0

    def env(kind: str, ident: str, event: Event) -> Envelope:
        nonlocal count
        count += 1
        return Envelope(new_id(), EntityRef(kind, ident), now + count, event)

    for uid in users:
        yield env("user", uid, UserRegistered(_blob(rng, 8), _blob(rng, 12), 1))
        yield env("user", uid, PasswordSet("$chatto1$" + _blob(rng, 30), 1, "register"))
    members: dict[str, list[str]] = {}
    for rid in rooms:
        yield env("room", rid, RoomCreated(f"room-{rid[-6:]}", "a topic", "channel", users[0]))
        members[rid] = rng.sample(users, min(MEMBERS_PER_ROOM, len(users)))
        for uid in members[rid]:
            yield env("room", rid, MemberJoined(uid))
    recent: dict[str, list[str]] = {rid: [] for rid in rooms}
    while count < total:
        rid = rng.choice(rooms)
        author = rng.choice(members[rid])
        earlier = recent[rid]
        roll = rng.random()
        if earlier and roll < 0.08:
            shortcode = rng.choice(["tada", "+1", "eyes"])
            event: Event = ReactionChanged(rng.choice(earlier), author, shortcode, True)
        elif earlier and roll < 0.12:
            event = MessageEdited(rng.choice(earlier), author, _blob(rng, 80), 1)
        elif earlier and roll < 0.22:
            root = rng.choice(earlier)
            event = MessagePosted(author, _blob(rng, 80), 1, thread_root=root, echo=roll < 0.13)
        else:
            event = MessagePosted(author, _blob(rng, 80), 1)
        e = env("room", rid, event)
        if isinstance(event, MessagePosted) and not event.thread_root:
            earlier.append(e.id)
            del earlier[:-50]
        yield e


async def publish_all(bridge: NatsBridge, envelopes: Iterator[Envelope], total: int) -> float:
    """Publish with many acks outstanding; returns events per second."""
    js = bridge.js
    start, done = time.perf_counter(), 0
    batch: list[tuple[str, bytes]] = []

    async def flush(items: list[tuple[str, bytes]]) -> None:
        await asyncio.gather(*(js.publish(s, d) for s, d in items))

    for env in envelopes:
        batch.append((subject_for(env), encode_envelope(env)))
        if len(batch) >= IN_FLIGHT:
            items, batch = batch, []
            await bridge.call(lambda items=items: flush(items))  # type: ignore[misc]
            done += len(items)
            if done % 100_000 < IN_FLIGHT:
                print(f"  written {done:,}/{total:,}", file=sys.stderr)
    if batch:
        await bridge.call(lambda: flush(batch))
    return total / (time.perf_counter() - start)


def read_models(kms: Kms) -> list[ReadModel]:
    """The server's snapshottable read models (``ShredFollower`` keeps no state)."""
    return [ServerView("Chatto"), UserDirectory(kms), RoomDirectory(), RbacView()]


async def start_projector(bridge: NatsBridge, kms: Kms, snapshots: bool) -> tuple[float, Projector]:
    """Seconds from construction until the projector reports ``started``."""
    store = NatsSnapshotStore(bridge) if snapshots else None
    projector = Projector(JetStreamEventStore(bridge), read_models(kms), Hub(), snapshots=store)
    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        nursery.cancel_scope.cancel()
    return time.perf_counter() - t0, projector


async def write_snapshot(bridge: NatsBridge, projector: Projector) -> dict[str, float]:
    """The steps of ``Projector.write_snapshot``, each timed, and the longest
    event-loop stall meanwhile (a task that wakes every millisecond)."""
    gaps = [0.0]

    async def ticker() -> None:
        last = time.perf_counter()
        while True:
            await trio.sleep(0.001)
            now = time.perf_counter()
            gaps[0], last = max(gaps[0], now - last), now

    async with trio.open_nursery() as nursery:
        nursery.start_soon(ticker)
        await trio.sleep(0.01)  # the ticker is running before the export starts
        tp = time.perf_counter()
        await projector.persist_objects()  # per-room index objects (rooms schema 9)
        t0 = time.perf_counter()
        states = await trio.to_thread.run_sync(projector.export_states)  # as the projector does
        t1 = time.perf_counter()
        data = await trio.to_thread.run_sync(
            encode_snapshot, projector.position, projector.last_event_id, states
        )
        t2 = time.perf_counter()
        await NatsSnapshotStore(bridge).save(data)
        await projector.snapshot_saved()
        t3 = time.perf_counter()
        nursery.cancel_scope.cancel()
    return {
        "objects_s": round(t0 - tp, 3),
        "export_s": round(t1 - t0, 3),
        "encode_s": round(t2 - t1, 3),
        "save_s": round(t3 - t2, 3),
        "loop_max_stall_ms": round(gaps[0] * 1000, 1),
        "bytes": len(data),
    }


def _summary(runs: list[float]) -> dict[str, Any]:
    return {"median_s": round(statistics.median(runs), 3), "runs_s": [round(r, 3) for r in runs]}


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatto-bench-startup-") as tmp:
        settings = EmbeddedSettings("127.0.0.1", 0, Path(tmp) / "nats", TOKEN)
        async with (
            open_embedded_nats(settings) as nats,
            open_nats_bridge(NatsSettings(nats.url, token=TOKEN, request_timeout=30)) as bridge,
            open_actor_system(RuntimeSettings()) as actors,
        ):
            await bootstrap_storage(bridge)
            register_kms(
                actors,
                BucketStore(bridge, ENCRYPTION_KEYS),
                BucketStore(bridge, RUNTIME_STATE),
                new_master_key(),
            )
            kms = Kms(actors)
            print(f"writing {args.events:,} events", file=sys.stderr)
            rate = await publish_all(bridge, generate(args.events), args.events)
            first_s, first = await start_projector(bridge, kms, snapshots=False)
            snap = await write_snapshot(bridge, first)
            snap_seq = first.position
            del first
            gc.collect()
            await publish_all(bridge, generate(args.tail, seed=8), args.tail)
            head = await JetStreamEventStore(bridge).head()
            full, restored = [first_s], []
            for _ in range(args.runs):
                for snapshots, into in ((True, restored), (False, full)):
                    seconds, p = await start_projector(bridge, kms, snapshots)
                    assert p.position == head
                    assert p.restored_seq == (snap_seq if snapshots else 0)
                    into.append(seconds)
                    del p
                    gc.collect()
            return {
                "events": head,
                "snapshot_seq": snap_seq,
                "tail_events": head - snap_seq,
                "write_events_per_s": round(rate),
                "full_replay": _summary(full[1:] or full),
                "first_full_replay_s": round(first_s, 3),
                "from_snapshot": _summary(restored),
                "snapshot": snap,
            }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--tail", type=int, default=None, help="events after the snapshot")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.tail is None:
        args.tail = max(10, args.events // 100)
    result = trio.run(bench, args)
    write_report(result, args.out)


if __name__ == "__main__":
    main()
