"""The bridge benchmark script runs end to end and writes a well-formed report.

Only the shape of the figures is checked, never the speed: CI machines vary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_bridge.py"
PHASES = ("raw_sequential", "raw_inflight", "bridge_sequential", "bridge_inflight")


def test_bench_smoke_writes_report(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    for name in PHASES:
        phase = report["phases"][name]
        assert phase["msgs_per_s"] > 0
        assert phase["p50_ms"] <= phase["p99_ms"]
        assert phase["failures"] == 0
    assert report["ratios"]["inflight"] > 0
    assert report["ratios"]["sequential"] > 0
    assert isinstance(report["target"]["pass"], bool)
