"""The mention benchmark runs on small numbers against a real server.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_mentions_smoke(tmp_path: Path) -> None:
    out = tmp_path / "mentions.json"
    report = run_report("bench_mentions.py", out, "--smoke", "--json", str(out))
    assert report["users_in_room"] == 8 and report["rounds"] == 5
    post = report["post_ms"]
    assert post["failures"] == 0
    for kind in ("plain", "one", "five", "room"):
        assert post[kind]["n"] == 5 and post[kind]["median"] > 0
        assert report["feed_apply_us"][kind]["n"] == 50
    assert set(post["added_median_ms"]) == {"one", "five", "room"}
