"""The actor-load benchmark runs end to end on a small room and writes its report.

Only the shape of the figures is checked, never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_actor_load_smoke(tmp_path: Path) -> None:
    out = tmp_path / "actor_load.json"
    report = run_report(
        "bench_actor_load.py",
        out,
        "--messages",
        "2000",
        "--runs",
        "2",
        "--out",
        str(out),
        "--memory",
    )
    assert report["events"] == 2002 and len(report["load_runs_s"]) == 2
    assert report["load_median_s"] > 0 and report["events_per_s"] > 0
    cp = report["checkpoint"]
    assert cp["bytes"] > 0 and cp["tail_events"] == 1000 and len(cp["load_runs_s"]) == 2
    # The actor's hot window (500 by default), not a Msg per message.
    assert report["memory"]["state_bytes"] > 0 and report["memory"]["msg_objects"] <= 502
