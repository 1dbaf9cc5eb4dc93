"""Progress of ``chatto backup``, ``restore`` and ``keys export|import`` on stderr.

On a terminal each part (the event stream, a bucket, the objects) gets a
bar redrawn in place; anywhere else (a log file, a pipe, cron mail) plain
lines, at most twice a second. Either way a part ends with one line giving
the number of records it holds, always printed: counts are of records, not
of stream sequence numbers, which have gaps where events were erased.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Protocol, TextIO

LINE_INTERVAL = 0.5  # plain lines
BAR_INTERVAL = 0.1  # redraws of a bar
BAR_WIDTH = 30


class Report(Protocol):
    """What the export and import code tells about its progress."""

    def step(self, what: str, done: int, total: int) -> None: ...

    def finish(self, what: str, records: int, note: str = "") -> None: ...


class Silent:
    """A ``Report`` that says nothing (internal copies, e.g. a bucket move)."""

    def step(self, what: str, done: int, total: int) -> None:
        return None

    def finish(self, what: str, records: int, note: str = "") -> None:
        return None


class Progress:
    """Reports ``step`` (work done out of an estimated total) and ``finish``."""

    def __init__(
        self,
        stream: TextIO | None = None,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stream = stream if stream is not None else sys.stderr
        self._tty = self._stream.isatty()
        self._clock = clock
        self._last: float | None = None
        self._drawn = 0  # width of the bar line on screen (0: none)

    def step(self, what: str, done: int, total: int) -> None:
        """``done`` of ``total`` (an estimate: the last line is ``finish``'s)."""
        now = self._clock()
        interval = BAR_INTERVAL if self._tty else LINE_INTERVAL
        if self._last is not None and now - self._last < interval:
            return
        self._last = now
        total = max(total, done)
        if self._tty:
            self._draw(_bar(what, done, total))
        else:
            self._write(f"chatto: {what}: {done}/{total}\n")

    def finish(self, what: str, records: int, note: str = "") -> None:
        """The part's final line: how many records it holds."""
        plural = "record" if records == 1 else "records"
        line = f"chatto: {what}: {records} {plural}" + (f" ({note})" if note else "")
        if self._tty:
            self._draw(line)
            self._write("\n")
            self._drawn = 0
        else:
            self._write(line + "\n")
        self._last = None  # the next part starts with a line at once

    def _draw(self, line: str) -> None:
        pad = " " * max(0, self._drawn - len(line))
        self._write("\r" + line + pad)
        self._drawn = len(line)

    def _write(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()


def _bar(what: str, done: int, total: int) -> str:
    share = done / total if total else 1.0
    filled = int(share * BAR_WIDTH)
    bar = "#" * filled + "-" * (BAR_WIDTH - filled)
    return f"chatto: {what} [{bar}] {share:4.0%} {done}/{total}"
