"""The start-up benchmark runs end to end on a small log and writes its report.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_startup_smoke(tmp_path: Path) -> None:
    out = tmp_path / "startup.json"
    report = run_report(
        "bench_startup.py", out, "--events", "3000", "--runs", "1", "--out", str(out)
    )
    assert report["events"] > report["snapshot_seq"] > 0
    assert report["tail_events"] == report["events"] - report["snapshot_seq"]
    assert report["full_replay"]["median_s"] > 0 and report["from_snapshot"]["median_s"] > 0
    assert report["snapshot"]["bytes"] > 0
