"""The start-up benchmark runs end to end on a small log and writes its report.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "bench_startup.py"


def test_bench_startup_smoke(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--events", "3000", "--runs", "1", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    assert report["events"] > report["snapshot_seq"] > 0
    assert report["tail_events"] == report["events"] - report["snapshot_seq"]
    assert report["full_replay"]["median_s"] > 0 and report["from_snapshot"]["median_s"] > 0
    assert report["snapshot"]["bytes"] > 0
