"""The flood benchmark runs end to end in smoke mode (no timing asserted)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_flood_smoke(tmp_path: Path) -> None:
    out = tmp_path / "flood.json"
    proc = subprocess.run(
        [sys.executable, "scripts/bench_flood.py", "--smoke", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    report = json.loads(out.read_text())
    for result in report["results"]:
        assert result["flood"]["lost"] == 0 and result["flood"]["messages"] > 0
        assert sum(result["flood_outcomes"].values()) > 0
        assert result["flood"]["p50_ms"] <= result["flood"]["p99_ms"]
