"""The longest Trio event-loop stall while a request runs (tests only).

A task sleeps 1 ms in a loop and records the largest gap between its
wake-ups: while a handler holds the loop (parsing, validating, executing
synchronously), nothing else runs, so the gap is how long every other
client waited. The server under test runs in the test's own ``trio.run``
(``tests.conftest.start_server``), so the probe sees its loop.

Wall time on a shared machine is noisy: tests assert on work counted (nodes
visited, parts refused, error codes) and only *report* the stall, printed
(``pytest -s``) and kept in ``RESULTS`` for anyone who wants the figures.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

TICK = 0.001
RESULTS: dict[str, float] = {}


@attrs.define
class StallProbe:
    """Gaps between ticks; ``max_stall_ms`` is the longest minus the tick itself."""

    label: str
    longest: float = 0.0
    ticks: int = 0

    @property
    def max_stall_ms(self) -> float:
        return round(max(0.0, self.longest - TICK) * 1000, 1)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        last = time.perf_counter()
        task_status.started()
        while True:
            await trio.sleep(TICK)
            now = time.perf_counter()
            self.longest, last = max(self.longest, now - last), now
            self.ticks += 1


@asynccontextmanager
async def measure_stall(label: str) -> AsyncIterator[StallProbe]:
    """Probe the loop for the duration of the block; report the longest stall."""
    probe = StallProbe(label)
    async with trio.open_nursery() as nursery:
        await nursery.start(probe.serve)
        try:
            yield probe
        finally:
            nursery.cancel_scope.cancel()
    RESULTS[label] = probe.max_stall_ms
    print(f"loopstall {label}: longest stall {probe.max_stall_ms} ms over {probe.ticks} ticks")
