"""The fan-out benchmark runs end to end on small numbers.

Only the shape of the figures is checked, never the speed: every frame
reached every subscriber with its body, and each figure was measured.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_fanout_smoke(tmp_path: Path) -> None:
    out = tmp_path / "fanout.json"
    report = run_report("bench_fanout.py", out, "--smoke", "--out", str(out))
    assert report["subscribers"] == 4 and report["posts_per_phase"] == 20
    assert report["frames_received"] == report["frames_expected"] == 80
    assert report["server_cpu_us_per_post"]["http"] > 0
    assert report["server_cpu_us_per_post"]["ws"] > 0
    assert report["floors"]["raw_ws_frame"]["us_per_frame_one_send_each"] > 0
    assert report["floors"]["raw_acked_publish"]["msgs_per_s"] > 0
