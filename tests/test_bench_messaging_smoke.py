"""The messaging benchmark runs end to end: no failed post, no lost delivery.

Only the shape of the figures is checked, never the speed: CI machines vary.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "scripts" / "bench_messaging.py"


def test_bench_messaging_smoke_delivers_everything(tmp_path: Path) -> None:
    out = tmp_path / "m.json"
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--smoke", "--json", str(out)],
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    report = json.loads(out.read_text())
    posts, delivery = report["posts"], report["delivery"]
    assert posts["acked"] > 0
    assert posts["failed"] == 0
    assert delivery["lost"] == 0
    assert delivery["delivered"] == delivery["expected"] > 0
    assert delivery["latency"]["p50_ms"] <= delivery["latency"]["p99_ms"]
