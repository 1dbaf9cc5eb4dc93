"""Unread counting over a room's main timeline, without opening any body.

A room's ``UnreadIndex`` keeps, in stream order, the sequence numbers of its
main-timeline messages by author and of those retracted. The unread count
for a viewer whose read marker is at sequence ``m`` is

    (main-timeline messages after m) - (retracted after m)
    - (the viewer's own, not retracted, after m)

three bisections: O(log n) per room. Sequences are ``array('q')``: 8 bytes
each, no object (issue #22). A retracted message counts in ``retracted``
while its tombstone is on the timeline; once the read model drops it from
the timeline (it left the hot window, or was cold when retracted) it is in
neither list.
"""

from __future__ import annotations

import base64
import bisect
from array import array
from collections.abc import Iterable, Sequence
from typing import Any

import attrs


@attrs.define
class UnreadIndex:
    """Per-room: live main-timeline seqs by author, and retracted seqs."""

    by_author: dict[str, array[int]] = attrs.Factory(dict)
    retracted: array[int] = attrs.Factory(lambda: array("q"))

    def posted(self, author_id: str, seq: int) -> None:
        seqs = self.by_author.setdefault(author_id, array("q"))
        if not seqs or seqs[-1] < seq:
            seqs.append(seq)
        else:
            bisect.insort(seqs, seq)

    def retract(self, author_id: str, seq: int, dropped: bool = False) -> None:
        """A main-timeline message was retracted (called once per message).

        ``dropped``: its seq also leaves the timeline (a cold message), so it
        is not counted as a retracted one either.
        """
        _remove(self.by_author.get(author_id), seq)
        if not dropped:
            bisect.insort(self.retracted, seq)

    def dropped(self, seq: int) -> None:
        """A retracted message's tombstone left the timeline."""
        _remove(self.retracted, seq)

    def unread(self, timeline_seqs: Sequence[int], viewer_id: str, marker_seq: int) -> int:
        """Messages after ``marker_seq`` that count for ``viewer_id``."""
        after = len(timeline_seqs) - bisect.bisect_right(timeline_seqs, marker_seq)
        if not after:
            return 0
        gone = len(self.retracted) - bisect.bisect_right(self.retracted, marker_seq)
        own = self.by_author.get(viewer_id)
        mine = len(own) - bisect.bisect_right(own, marker_seq) if own else 0
        return max(0, after - gone - mine)

    @classmethod
    def rebuild(cls, rows: Iterable[tuple[int, str, bool]]) -> UnreadIndex:
        """From (seq, author, retracted) rows of the main timeline, in seq order."""
        index = cls()
        for seq, author, retracted in rows:
            if retracted:
                index.retracted.append(seq)
            else:
                index.by_author.setdefault(author, array("q")).append(seq)
        return index

    def export(self) -> dict[str, Any]:
        return {
            "by_author": {a: _b64(s) for a, s in self.by_author.items()},
            "retracted": _b64(self.retracted),
        }

    @classmethod
    def restore(cls, row: dict[str, Any]) -> UnreadIndex:
        return cls({a: _seqs(s) for a, s in row["by_author"].items()}, _seqs(row["retracted"]))


def _remove(seqs: array[int] | None, seq: int) -> None:
    if seqs is None:
        return
    i = bisect.bisect_left(seqs, seq)
    if i < len(seqs) and seqs[i] == seq:
        del seqs[i]


def _b64(seqs: array[int]) -> str:
    return base64.b64encode(seqs.tobytes()).decode()


def _seqs(text: str) -> array[int]:
    out = array("q")
    out.frombytes(base64.b64decode(text))
    return out
