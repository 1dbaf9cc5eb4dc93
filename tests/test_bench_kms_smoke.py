"""The KMS benchmark runs end to end on small numbers and writes its report.

Only the shape of the figures is checked (and that shredding leaves nothing),
never the speed.
"""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report


def test_bench_kms_smoke(tmp_path: Path) -> None:
    out = tmp_path / "kms.json"
    args = ("--n", "20", "--migrate", "50", "--shred", "5", "--out", str(out))
    report = run_report("bench_kms.py", out, *args)
    assert report["cold_dek_unwrap_with_kek_load"]["n"] == 20
    assert report["migration"] == {
        "raw_keks": 50,
        "sealed": 50,
        "seconds": report["migration"]["seconds"],
    }
    shred = report["shred"]
    assert shred["found_before_shredding"] > 0 and shred["found"] == 0
