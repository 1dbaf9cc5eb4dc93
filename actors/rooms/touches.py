"""Compact per-room indexes for reading old messages back from the stream.

A message read from the stream long after it was posted must show every
later change to it. ``TouchIndex`` records, for each edit, reaction and
retraction, the pair (sequence of the message it aims at, sequence of the
event itself) in two ``array('q')`` sorted by target: 16 bytes per change,
no Python object. The cold reader (``chatto/messaging/cold.py``) finds a
page's changes with two bisections and folds them over the page in stream
order. Thread replies need no entry: a root's ``reply_count`` is the length
of its thread's timeline.
"""

from __future__ import annotations

import bisect
from array import array
from typing import Any


class TouchIndex:
    """(target seq, event seq) pairs, ordered by target, then by event."""

    __slots__ = ("events", "targets")

    def __init__(self) -> None:
        self.targets = array("q")
        self.events = array("q")

    def __len__(self) -> int:
        return len(self.targets)

    def add(self, target_seq: int, event_seq: int) -> None:
        # Events arrive in stream order, so inserting after equal targets
        # keeps each target's events in order too.
        i = bisect.bisect_right(self.targets, target_seq)
        self.targets.insert(i, target_seq)
        self.events.insert(i, event_seq)

    def between(self, first: int, last: int) -> list[tuple[int, int]]:
        """(target seq, event seq) of changes aimed at targets in ``[first, last]``."""
        lo = bisect.bisect_left(self.targets, first)
        hi = bisect.bisect_right(self.targets, last)
        return list(zip(self.targets[lo:hi], self.events[lo:hi], strict=True))

    def export(self) -> list[list[int]]:
        return [self.targets.tolist(), self.events.tolist()]

    @classmethod
    def restore(cls, row: Any) -> TouchIndex:
        index = cls()
        index.targets.fromlist(list(row[0]))
        index.events.fromlist(list(row[1]))
        return index
