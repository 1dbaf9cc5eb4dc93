"""The index-object stall benchmark runs end to end on a small room, both
formats. Only the shape of the figures is checked, never the speed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scriptrun import run_report


@pytest.mark.parametrize("fmt", ["1", "2"])
def test_bench_index_stall_smoke(tmp_path: Path, fmt: str) -> None:
    out = tmp_path / "stall.json"
    report = run_report(
        "bench_index_stall.py",
        out,
        "--messages",
        "2000",
        "--repeat",
        "1",
        "--format",
        fmt,
        "--out",
        str(out),
    )
    assert report["format"] == int(fmt) and report["posts"] >= 2000
    (run,) = report["runs"]
    assert run["bytes"] > 0 and run["encode_ms"] > 0 and run["decode_ms"] > 0
    assert run["encode_longest_hold_ms"] >= 0 and run["decode_longest_hold_ms"] >= 0
