"""The bridge benchmark script runs end to end and writes a well-formed report.

Only the shape of the figures is checked, never the speed: CI machines vary.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report

PHASES = ("raw_sequential", "raw_inflight", "bridge_sequential", "bridge_inflight")


def test_bench_smoke_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    report = run_report("bench_bridge.py", out, "--smoke", "--json", str(out))
    for name in PHASES:
        phase = report["phases"][name]
        assert phase["msgs_per_s"] > 0
        assert phase["p50_ms"] <= phase["p99_ms"]
        assert phase["failures"] == 0
    assert report["ratios"]["inflight"] > 0
    assert report["ratios"]["sequential"] > 0
    assert isinstance(report["target"]["pass"], bool)
