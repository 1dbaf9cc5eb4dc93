"""The KMS benchmark runs end to end on small numbers and writes its report.

Only the shape of the figures is checked (and that shredding leaves nothing),
never the speed.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.scriptrun import run_report
from tests.softhsm import softhsm_available


@pytest.mark.parametrize("provider", ["local", "pkcs11"])
def test_bench_kms_smoke(tmp_path: Path, provider: str) -> None:
    if provider == "pkcs11" and not softhsm_available():
        pytest.skip("softhsm2 is not installed; apt-get install softhsm2")
    out = tmp_path / "kms.json"
    args = ("--n", "20", "--migrate", "50", "--shred", "5", "--out", str(out))
    report = run_report("bench_kms.py", out, *args, "--provider", provider)
    assert report["provider"] == provider
    assert report["cold_dek_unwrap_with_kek_load"]["n"] == 20
    assert report["master_key_operations"]["unwraps"] > 0
    assert report["migration"] == {
        "raw_keks": 50,
        "sealed": 50,
        "seconds": report["migration"]["seconds"],
    }
    shred = report["shred"]
    assert shred["found_before_shredding"] > 0 and shred["found"] == 0
