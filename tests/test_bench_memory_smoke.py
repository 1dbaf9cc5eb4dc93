"""The memory benchmark runs end to end on a small log and writes its report.

Only the shape of the figures is checked, never the speed or the sizes.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_memory_smoke(tmp_path: Path) -> None:
    out = tmp_path / "memory.json"
    report = run_report("bench_memory.py", out, "--smoke", "--out", str(out))
    assert report["events"] > report["big_room_messages"] == 1000
    serve = report["from_snapshot"]
    # Both ways through the big room: every message once each way.
    assert serve["big_room"]["views"] == 2 * 1000
    assert serve["big_room"]["hot_ms"]["n"] > 0 and serve["big_room"]["cold_ms"]["n"] > 0
    assert serve["readers"]["readers"] == 20 and serve["readers"]["latest_ms"]["n"] >= 20
    cold = serve["cold_path"]
    assert cold["views"] == 2 * 1000 and cold["read_ms"]["n"] > 0
    assert cold["cache"]["pages"] <= cold["cache"]["max_pages"]
    for phase in ("after_start", "after_paging_big_room", "after_readers", "after_cold_paging"):
        assert serve[phase]["rss_mb"] > 0
    assert serve["start_s"] > 0 and report["full_replay"]["snapshot"]["bytes"] > 0
