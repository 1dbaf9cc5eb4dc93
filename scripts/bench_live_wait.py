"""Benchmark: what a live stream's wait for its next item costs, per delivered item.

In-process, no sockets: ``--readers`` subscribers of one hub topic, each in
its own task reading items the way ``myEvents`` does (``receive_nowait``,
then a blocking ``receive``), ``--items`` items published one at a time with
a scheduler pass after each (so every reader is idle when its item comes,
as on a live socket). Two ways of waiting, alternating:

- ``deadline``: the blocking receive inside ``trio.move_on_at(next refresh)``
  (what ``myEvents`` did until the hub's ticks: a cancel scope per item);
- ``plain``: the blocking receive alone (what it does now; ``Hub.tick``
  wakes idle readers for their presence refresh).

CPU time of this process per delivered item. Run:
``.venv/bin/python scripts/bench_live_wait.py [--readers 50 --items 4000 --rounds 2]``
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import trio

from actors.hub import Hub, Subscriber
from chatto.loadtest.report import write_report


async def _deadline_next(sub: Subscriber, deadline: float) -> Any:
    try:
        return sub.receive.receive_nowait()
    except trio.WouldBlock:
        pass
    with trio.move_on_at(deadline):
        return await sub.receive.receive()
    return None


async def _plain_next(sub: Subscriber) -> Any:
    try:
        return sub.receive.receive_nowait()
    except trio.WouldBlock:
        pass
    return await sub.receive.receive()


async def _run(kind: str, readers: int, items: int) -> tuple[float, int]:
    hub = Hub()
    got = [0]

    async def reader(*, task_status: trio.TaskStatus[None]) -> None:
        with hub.subscribe(["t"], capacity=1024) as sub:
            task_status.started()
            deadline = trio.current_time() + 3600
            while True:
                if kind == "deadline":
                    await _deadline_next(sub, deadline)
                else:
                    await _plain_next(sub)
                got[0] += 1

    async with trio.open_nursery() as nursery:
        for _ in range(readers):
            await nursery.start(reader)
        t0 = time.process_time()
        for i in range(items):
            hub.publish("t", i)
            await trio.lowlevel.checkpoint()
        while got[0] < readers * items:
            await trio.lowlevel.checkpoint()
        elapsed = time.process_time() - t0
        nursery.cancel_scope.cancel()
    return elapsed / (readers * items) * 1e6, got[0]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--readers", type=int, default=50)
    p.add_argument("--items", type=int, default=4000)
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--out", type=Path)
    args = p.parse_args()
    runs: dict[str, list[float]] = {"deadline": [], "plain": []}
    delivered = 0
    for _ in range(args.rounds):
        for kind in ("deadline", "plain"):
            us, got = trio.run(_run, kind, args.readers, args.items)
            runs[kind].append(round(us, 2))
            delivered += got
    report = {
        "readers": args.readers,
        "items": args.items,
        "delivered": delivered,
        "cpu_us_per_delivered_item": runs,
    }
    write_report(report, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
