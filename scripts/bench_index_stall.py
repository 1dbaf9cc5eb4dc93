"""Benchmark: how long writing or reading a room's history index object holds
the event loop (issue #22).

Index objects are encoded and decoded in worker threads, but a single C
call that holds the GIL (a big ``json.loads``) makes the loop thread wait
for all of it. This builds one room of ``--messages`` messages (the
``bench_memory`` big room: replies, reactions, edits), then encodes and
decodes its index in a thread while the main thread sleeps 0.2 ms at a
time, and reports the longest gap between its wake-ups: the longest the
loop could have been held. ``--format 1`` is the previous object format
(the whole row as one JSON text) for comparison. Runs with ``chatto run``'s
GC and switch-interval settings. JSON out:
``.venv/bin/python scripts/bench_index_stall.py --messages 100000``.
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench_memory import BIG_ROOM, big_room

from actors.events import Recorded
from actors.rooms.directory import RoomDirectory
from actors.rooms.indexrows import index_from_row, index_row
from actors.rooms.resident import decode_index, encode_index
from chatto.loadtest.report import write_report
from chatto.tuning import tune_gc, tune_threads


def worst_gap_ms(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """(result, seconds in all, longest gap between the sleeper's wake-ups in ms)."""
    done = threading.Event()
    out: dict[str, Any] = {}

    def run() -> None:
        out["result"] = work()
        done.set()

    started = time.perf_counter()
    thread = threading.Thread(target=run)
    thread.start()
    worst, last = 0.0, time.perf_counter()
    while not done.is_set():
        time.sleep(0.0002)
        now = time.perf_counter()
        worst, last = max(worst, now - last), now
    thread.join()
    return out["result"], time.perf_counter() - started, worst * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--format", type=int, choices=[1, 2], default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    rooms = RoomDirectory(hot_messages=50, hot_rooms=10)
    for seq, env in enumerate(big_room(args.messages), 1):
        rooms.apply(Recorded(seq, env))
    index = rooms.rooms[BIG_ROOM].index
    tune_gc()
    tune_threads()
    if args.format == 2:
        encode: Callable[[], bytes] = lambda: encode_index(index, rooms.authors)  # noqa: E731
        decode: Callable[[bytes], Any] = lambda d: decode_index(d, rooms.authors, BIG_ROOM)  # noqa: E731
    else:

        def encode() -> bytes:
            text = json.dumps(
                index_row(index, rooms.authors), sort_keys=True, separators=(",", ":")
            )
            return zlib.compress(text.encode(), 1)

        def decode(data: bytes) -> Any:
            return index_from_row(json.loads(zlib.decompress(data)), rooms.authors, BIG_ROOM)

    runs = []
    for _ in range(args.repeat):
        data, encode_s, encode_gap = worst_gap_ms(encode)
        _, decode_s, decode_gap = worst_gap_ms(lambda: decode(data))  # noqa: B023
        runs.append(
            {
                "bytes": len(data),
                "encode_ms": round(encode_s * 1000, 1),
                "encode_longest_hold_ms": round(encode_gap, 1),
                "decode_ms": round(decode_s * 1000, 1),
                "decode_longest_hold_ms": round(decode_gap, 1),
            }
        )
    result = {
        "messages": args.messages,
        "posts": len(index.posts),
        "format": args.format,
        "runs": runs,
    }
    write_report(result, args.out)


if __name__ == "__main__":
    main()
