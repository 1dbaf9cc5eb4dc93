"""The live-wait benchmark runs on small numbers and delivers every item both ways.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_live_wait_smoke(tmp_path: Path) -> None:
    out = tmp_path / "wait.json"
    args = ("--readers", "3", "--items", "20", "--rounds", "1", "--out", str(out))
    report = run_report("bench_live_wait.py", out, *args)
    assert report["delivered"] == 2 * 3 * 20  # both ways, every reader, every item
    runs = report["cpu_us_per_delivered_item"]
    assert len(runs["deadline"]) == len(runs["plain"]) == 1
    assert all(v > 0 for v in runs["deadline"] + runs["plain"])
