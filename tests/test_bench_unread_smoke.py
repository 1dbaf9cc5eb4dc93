"""The unread benchmark runs on small numbers and agrees with a naive count.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_unread_smoke(tmp_path: Path) -> None:
    out = tmp_path / "unread.json"
    report = run_report("bench_unread.py", out, "--smoke", "--json", str(out))
    assert report["rooms"] == 20 and report["messages_per_room"] == 100
    assert report["mismatches"] == 0
    assert report["viewer_unread_total"] > 0
    assert 0 < report["viewer_mention_total"] < report["viewer_unread_total"]
    assert report["mention_count_us"]["n"] == 5
    assert report["one_room_count_us"]["n"] == 20 * 5
    assert report["all_rooms_count_ms"]["median"] >= 0
