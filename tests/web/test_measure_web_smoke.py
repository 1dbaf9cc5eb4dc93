"""The web measurement script on a small room: the first load stays under its
budget and the windowed timeline keeps the DOM bounded while paging back."""

from __future__ import annotations

from pathlib import Path

from tests.scriptrun import run_report
from tests.web.ui import need_chromium


def test_measure_web_smoke(tmp_path: Path) -> None:
    need_chromium()
    out = tmp_path / "web.json"
    report = run_report("measure_web.py", out, "--smoke", "--json", str(out))
    assert report["messages"] == 500
    assert 0 < report["first_load_bytes"] <= report["static_bytes"] <= 300 * 1024
    assert "/static/js/admin_view.js" not in report["first_load_files"]  # loaded when opened
    assert report["first_timeline_ms"]["median"] > 0
    # Paged back to message 0 with never more than the window in the DOM.
    assert report["scrollback"]["max_message_nodes"] <= 160
