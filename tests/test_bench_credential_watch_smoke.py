"""The credential-watch benchmark runs end to end and writes a well-formed report.

Only the shape of the figures is checked, never the speed: CI machines vary.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_credential_watch_smoke(tmp_path: Path) -> None:
    out = tmp_path / "out.json"
    report = run_report("bench_credential_watch.py", out, "--smoke", "--json", str(out))
    assert report["n"] == 100
    assert 0 < report["kv_check_us"]["median"] <= report["kv_check_us"]["p99"]
    assert report["kv_check_cpu_us"] > 0 and report["poll_each_second_cores"] > 0
    assert report["track_us"] > 0 and report["end_us"] > 0
    assert set(report["idle_cpu_ms_per_s"]) == {"none_tracked", "n_tracked"}
