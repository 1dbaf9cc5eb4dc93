"""The flood benchmark runs end to end in smoke mode (no timing asserted)."""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_flood_smoke(tmp_path: Path) -> None:
    out = tmp_path / "flood.json"
    report = run_report("bench_flood.py", out, "--smoke", "--json", str(out), timeout=180)
    for result in report["results"]:
        assert result["flood"]["lost"] == 0 and result["flood"]["messages"] > 0
        assert sum(result["flood_outcomes"].values()) > 0
        assert result["flood"]["p50_ms"] <= result["flood"]["p99_ms"]
