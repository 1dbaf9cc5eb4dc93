"""Run a script under ``scripts/`` as the benchmark smoke tests do; its JSON report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def run_report(script: str, out: Path, *args: str, timeout: float = 120) -> Any:
    """``python scripts/<script> <args>`` from the repository root; the report at ``out``.

    Fails the test with the script's output if it exits non-zero.
    """
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / script), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    return json.loads(out.read_text())
