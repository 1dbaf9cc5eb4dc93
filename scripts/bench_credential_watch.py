"""Benchmark: what watching open sockets' credentials costs (chatto/auth/ends.py).

Starts a complete Chatto in-process and measures, for N tracked credentials:

- ``kv_check_us`` / ``kv_check_cpu_us``: one session-record read through the
  bridge (``SessionStore.expires_at``), the unit of any re-validation, in
  wall time and in CPU of this process (both threads). Polling every socket
  once a second would cost N of these per second (``poll_each_second_cores``);
- ``track_us``: registering and unregistering one credential (heap + indexes);
- ``idle_cpu_ms_per_s``: CPU the whole process spends per second while idle,
  with none and with N credentials tracked (the per-process timer wakes
  once a second to notice reconnects, whatever N is);
- ``end_us``: ending every socket of one revoked key (``announce``, local
  part, plus the flushed core-NATS notice).

Run: ``.venv/bin/python scripts/bench_credential_watch.py [--n 10000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio
from bench_messaging import machine_info, make_config

from chatto.auth.ends import Credential
from chatto.server import Running, serve_chatto


async def measure(n: int, checks: int, idle: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        config = make_config(Path(tmp))
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_chatto, config, shutdown)
            report = await _measure(running, n, checks, idle)
            shutdown.set()
    return report


async def _measure(running: Running, n: int, checks: int, idle: float) -> dict[str, Any]:
    services = running.services
    sessions, watch = services.authn.sessions, services.credentials
    token = await sessions.issue_bearer("bench", 0)
    session = await sessions.validate_bearer(token)
    assert session is not None
    samples = []
    cpu0 = time.process_time()
    for _ in range(checks):
        t0 = time.perf_counter()
        await sessions.expires_at(session.key)
        samples.append((time.perf_counter() - t0) * 1e6)
    check_cpu_us = (time.process_time() - cpu0) * 1e6 / checks
    far = session.expires_ms + 3_600_000  # nothing falls due while measuring
    creds = [Credential(f"session.bench.{i}", "bench", 0, far) for i in range(n)]
    baseline = await _idle_cpu(idle)
    with _Tracked(watch, creds) as tracked:
        idle_cpu = await _idle_cpu(idle)
        victims = [Credential(session.key, "bench", 0, far) for _ in range(100)]
        with _Tracked(watch, victims):
            t0 = time.perf_counter()
            await watch.announce([session.key])
            end_us = (time.perf_counter() - t0) * 1e6
            assert all(v.ended for v in victims)
    return {
        "n": n,
        "kv_check_us": {
            "median": statistics.median(samples),
            "p99": sorted(samples)[int(len(samples) * 0.99) - 1],
        },
        "kv_check_cpu_us": check_cpu_us,
        # What re-reading every socket's record once a second would cost: cores busy.
        "poll_each_second_cores": n * check_cpu_us / 1e6,
        "track_us": tracked.per_item_us,
        "idle_cpu_ms_per_s": {"none_tracked": baseline * 1000, "n_tracked": idle_cpu * 1000},
        "end_us": end_us,
        "machine": machine_info(),
    }


async def _idle_cpu(seconds: float) -> float:
    """CPU seconds per second of the whole process (both threads) while idle."""
    t_cpu, t_wall = time.process_time(), time.perf_counter()
    await trio.sleep(seconds)
    return (time.process_time() - t_cpu) / (time.perf_counter() - t_wall)


class _Tracked:
    """Track many credentials at once and time it (registration + removal)."""

    def __init__(self, watch: Any, creds: list[Credential]) -> None:
        self._watch, self._creds = watch, creds
        self._scopes: list[Any] = []
        self.per_item_us = 0.0

    def __enter__(self) -> _Tracked:
        t0 = time.perf_counter()
        for cred in self._creds:
            scope = self._watch.track(cred)
            scope.__enter__()
            self._scopes.append(scope)
        self.per_item_us = (time.perf_counter() - t0) * 1e6 / max(1, len(self._creds))
        return self

    def __exit__(self, *exc: object) -> None:
        for scope in reversed(self._scopes):
            scope.__exit__(None, None, None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=10_000, help="tracked credentials")
    ap.add_argument("--checks", type=int, default=2000, help="KV reads to time")
    ap.add_argument("--idle", type=float, default=5.0, help="seconds of idle to measure")
    ap.add_argument("--smoke", action="store_true", help="tiny run for CI")
    ap.add_argument("--json", type=Path, help="write the report here")
    args = ap.parse_args()
    if args.smoke:
        args.n, args.checks, args.idle = 100, 50, 0.5
    report = trio.run(measure, args.n, args.checks, args.idle)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text)


if __name__ == "__main__":
    sys.exit(main())
