"""The messaging benchmark runs end to end: no failed post, no lost delivery.

Only the shape of the figures is checked, never the speed: CI machines vary.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_messaging_smoke_delivers_everything(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    report = run_report("bench_messaging.py", out, "--smoke", "--json", str(out), timeout=180)
    posts, delivery = report["posts"], report["delivery"]
    assert posts["acked"] > 0
    assert posts["failed"] == 0
    assert delivery["lost"] == 0
    assert delivery["delivered"] == delivery["expected"] > 0
    assert delivery["latency"]["p50_ms"] <= delivery["latency"]["p99_ms"]
