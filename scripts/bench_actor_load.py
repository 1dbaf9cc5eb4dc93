"""Benchmark: how long a room's write-side actor takes to load a long history.

An entity actor (``RoomActor``) replays every event of its entity the first
time it is used after a start or after passivation (``actors.idle_seconds``
idle). This writes one room with ``--messages`` posts straight into ``EVT``
(atomic batches of 1,000, bodies shaped like sealed ones) on an embedded
nats-server in a temp dir, then times ``--runs`` fresh ``RoomActor`` loads
replaying everything, writes a checkpoint (``actors.checkpoint``), adds
1,000 newer events and times ``--runs`` loads from checkpoint + tail.
With ``--memory``, one more full load under ``tracemalloc`` reports what the
loaded actor holds (bytes, ``Msg`` objects: its hot window, issue #22).

Run: ``.venv/bin/python scripts/bench_actor_load.py --messages 200000 --out actor_load.json``
"""

from __future__ import annotations

import argparse
import base64
import gc
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from actors.events import EntityRef, Envelope
from actors.ids import new_id
from actors.rooms.actor import RoomActor
from actors.rooms.events import MemberJoined, MessagePosted, RoomCreated
from actors.rooms.rules import Msg
from chatto.bus.bridge import MAX_ATOMIC_BATCH, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from chatto.bus.storage import bootstrap_storage
from chatto.codec import encode_envelope, subject_for
from chatto.eventstore import JetStreamEventStore
from chatto.snapshot_store import NatsSnapshotStore

TOKEN = "bench-actor-load-token-0123456789"
TAIL = 1000  # events written after the checkpoint


def history(room: EntityRef, messages: int) -> list[Envelope]:
    now = int(time.time() * 1000)
    envs = [
        Envelope(new_id(), room, now, RoomCreated("long", "", "channel", "u1")),
        Envelope(new_id(), room, now, MemberJoined("u1")),
    ]
    for _ in range(messages):
        body = base64.urlsafe_b64encode(os.urandom(140)).decode()  # ~100 chars of text, sealed
        envs.append(Envelope(new_id(), room, now, MessagePosted("u1", body, 1)))
    return envs


async def bench(args: argparse.Namespace) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="chatto-bench-actor-") as tmp:
        settings = EmbeddedSettings("127.0.0.1", 0, Path(tmp) / "nats", TOKEN)
        async with (
            open_embedded_nats(settings) as nats,
            open_nats_bridge(NatsSettings(nats.url, token=TOKEN, request_timeout=30)) as bridge,
        ):
            await bootstrap_storage(bridge)
            room = EntityRef("room", "long")
            envs = history(room, args.messages)
            started = time.perf_counter()
            for i in range(0, len(envs), MAX_ATOMIC_BATCH):
                chunk = envs[i : i + MAX_ATOMIC_BATCH]
                await bridge.publish_batch([(subject_for(e), encode_envelope(e)) for e in chunk])
            write_s = time.perf_counter() - started
            print(f"wrote {len(envs):,} events in {write_s:.1f}s", file=sys.stderr)
            store = JetStreamEventStore(bridge)
            runs = []
            for _ in range(args.runs):
                actor = RoomActor("long", store)
                started = time.perf_counter()
                await actor.start()
                runs.append(time.perf_counter() - started)
                assert len(actor.window) == args.messages
                print(f"full replay: {runs[-1]:.2f}s", file=sys.stderr)
            memory = await held_by_a_load(store) if args.memory else None
            # A checkpoint (what a long load or a passivation writes), then
            # TAIL newer events, then loads from checkpoint + tail.
            checkpoints = NatsSnapshotStore(bridge, "actor.room.long")
            writer = RoomActor("long", store, checkpoints=checkpoints)
            await writer.start()  # the long load writes the checkpoint
            started = time.perf_counter()
            writer.unsaved = writer.checkpoint_every
            assert await writer.save_checkpoint()
            write_s = time.perf_counter() - started
            size = len(await checkpoints.load() or b"")
            tail = history(room, TAIL)[2:]
            await bridge.publish_batch([(subject_for(e), encode_envelope(e)) for e in tail])
            cp_runs = []
            for _ in range(args.runs):
                actor = RoomActor("long", store, checkpoints=checkpoints)
                actor.checkpoint_every = 10**9  # time the load only
                started = time.perf_counter()
                await actor.start()
                cp_runs.append(time.perf_counter() - started)
                assert len(actor.window) == args.messages + TAIL and actor.unsaved == TAIL
                print(f"checkpoint + {TAIL} tail: {cp_runs[-1]:.2f}s", file=sys.stderr)
    median = statistics.median(runs)
    cp_median = statistics.median(cp_runs)
    return {
        "benchmark": "actor_load",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "messages": args.messages,
        "events": len(envs),
        "write_s": round(write_s, 3),
        "load_runs_s": [round(r, 3) for r in runs],
        "load_median_s": round(median, 3),
        "events_per_s": round(len(envs) / median),
        "checkpoint": {
            "bytes": size,
            "write_s": round(write_s, 3),
            "tail_events": TAIL,
            "load_runs_s": [round(r, 3) for r in cp_runs],
            "load_median_s": round(cp_median, 3),
        },
        "speedup": round(median / cp_median, 1),
        "memory": memory,
    }


async def held_by_a_load(store: JetStreamEventStore) -> dict[str, int]:
    """Bytes and ``Msg`` objects a fully loaded actor holds (traced: slow)."""
    gc.collect()
    msgs_before = sum(isinstance(o, Msg) for o in gc.get_objects())
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        actor = RoomActor("long", store)
        await actor.start()
        gc.collect()
        held = tracemalloc.get_traced_memory()[0] - base
    finally:
        tracemalloc.stop()
    msgs = sum(isinstance(o, Msg) for o in gc.get_objects()) - msgs_before
    print(f"a loaded actor holds {held:,} bytes, {msgs:,} Msg objects", file=sys.stderr)
    return {"state_bytes": held, "msg_objects": msgs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=200_000, help="posts in the room")
    parser.add_argument("--runs", type=int, default=3, help="fresh actor loads to time")
    parser.add_argument("--out", default="actor_load.json", help="JSON report path")
    parser.add_argument("--memory", action="store_true", help="also trace one load's memory")
    args = parser.parse_args()
    report = trio.run(bench, args)
    cp = report["checkpoint"]
    print(
        f"RoomActor load of {report['events']:,} events: median {report['load_median_s']}s "
        f"({report['events_per_s']:,} events/s; runs {report['load_runs_s']})\n"
        f"from a checkpoint ({cp['bytes']:,} bytes, written in {cp['write_s']}s) + "
        f"{cp['tail_events']} newer events: median {cp['load_median_s']}s "
        f"(runs {cp['load_runs_s']}): {report['speedup']}x faster"
    )
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
