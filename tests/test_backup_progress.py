"""Progress of backups, restores and key exports: records counted, last line always.

Streams are passed in (a terminal is any stream whose ``isatty`` is true);
the clock is a counter, so the throttling is exact. The end-to-end test
backs up a log with gaps (a retraction erases events) and restores it.
"""

from __future__ import annotations

import io
import re
import shutil
from pathlib import Path

import httpx
import trio

from chatto.backup import archive, commands
from chatto.backup.progress import Progress
from chatto.bus.storage import EVENT_STREAM
from tests.authflow import login_token
from tests.conftest import ConfigFactory, start_server
from tests.test_backup import PW, register_console
from tests.test_messaging import POST, ok


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_plain_lines_are_throttled_and_the_last_line_is_the_record_count() -> None:
    out, clock = io.StringIO(), Clock()
    progress = Progress(out, clock=clock)
    progress.step("EVT", 1, 176)
    progress.step("EVT", 50, 176)  # within half a second: not printed
    clock.now += 0.6
    progress.step("EVT", 105, 176)
    progress.finish("EVT", 174)  # gaps: fewer records than the estimate said
    progress.step("RUNTIME_STATE", 1, 3)  # a new part prints at once
    progress.finish("RUNTIME_STATE", 2, "1 already present")
    assert out.getvalue().splitlines() == [
        "chatto: EVT: 1/176",
        "chatto: EVT: 105/176",
        "chatto: EVT: 174 records",
        "chatto: RUNTIME_STATE: 1/3",
        "chatto: RUNTIME_STATE: 2 records (1 already present)",
    ]


def test_a_terminal_gets_a_bar_redrawn_in_place() -> None:
    out, clock = Terminal(), Clock()
    progress = Progress(out, clock=clock)
    for done in range(0, 201, 50):
        progress.step("EVT", done, 200)
        clock.now += 0.2
    progress.finish("EVT", 200)
    text = out.getvalue()
    assert "\n" not in text[:-1]
    # The final line overwrites the bar, padded to clear what it covered.
    assert re.search(r"\rchatto: EVT: 200 records {33}\n$", text)
    frames = text.split("\r")[1:]
    assert frames[0].startswith("chatto: EVT [" + "-" * 30 + "]   0% 0/200")
    assert "[" + "#" * 15 + "-" * 15 + "]  50% 100/200" in frames[2]
    assert len(frames) == 6  # five bars, then the final line over the last one


async def test_backup_of_a_log_with_gaps_counts_its_records(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    config = make_config(CHATTO_AUTH_BCRYPT_COST="4")
    handle = await start_server(nursery, config)
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=handle.url, timeout=20) as c:
            await register_console(c, handle, "ann")
            token = await login_token(c, "ann", PW)
            ids = [
                (await ok(c, token, POST, r="general", b=f"m{i}"))["postMessage"]["id"]
                for i in range(5)
            ]
            retract = "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }"
            await ok(c, token, retract, r="general", e=ids[1])
        head = await handle.running.services.store.head()
        out, log = tmp_path / "b.tar.gz", io.StringIO()
        await commands.backup(config, out, False, False, None, progress=Progress(log))
        records = len(archive.read(out.read_bytes()).members[f"streams/{EVENT_STREAM}.jsonl"])
        assert records < head  # the retraction erased events: sequences have gaps
        lines = log.getvalue().splitlines()
        assert f"chatto: {EVENT_STREAM}: {records} records" in lines
        finals = [ln for ln in lines if re.fullmatch(r"chatto: \w+: \d+ records?", ln)]
        assert len(finals) == 3  # EVT, RUNTIME_STATE, OBJECTS: each part says its count
        await handle.stop()
        # Restoring says the same count.
        shutil.rmtree(config.data_dir)
        log = io.StringIO()
        await commands.restore(config, out, "error", None, progress=Progress(log))
        assert f"chatto: {EVENT_STREAM}: {records} records" in log.getvalue().splitlines()
