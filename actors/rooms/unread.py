"""Unread counting over a room's main timeline, without opening any body.

A room's ``UnreadIndex`` keeps, in stream order, the sequence numbers of its
main-timeline messages by author and of those retracted. The unread count
for a viewer whose read marker is at sequence ``m`` is

    (main-timeline messages after m) - (retracted after m)
    - (the viewer's own, not retracted, after m)

three bisections: O(log n) per room. The index is derived from the
timeline and the messages, so snapshots do not carry it (``rebuild``).
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable

import attrs


@attrs.define
class UnreadIndex:
    """Per-room: live main-timeline seqs by author, and retracted seqs."""

    by_author: dict[str, list[int]] = attrs.Factory(dict)
    retracted: list[int] = attrs.Factory(list)

    def posted(self, author_id: str, seq: int) -> None:
        bisect.insort(self.by_author.setdefault(author_id, []), seq)

    def retract(self, author_id: str, seq: int) -> None:
        """A main-timeline message was retracted (called once per message)."""
        seqs = self.by_author.get(author_id, [])
        i = bisect.bisect_left(seqs, seq)
        if i < len(seqs) and seqs[i] == seq:
            del seqs[i]
        bisect.insort(self.retracted, seq)

    def unread(self, timeline_seqs: list[int], viewer_id: str, marker_seq: int) -> int:
        """Messages after ``marker_seq`` that count for ``viewer_id``."""
        after = len(timeline_seqs) - bisect.bisect_right(timeline_seqs, marker_seq)
        if not after:
            return 0
        gone = len(self.retracted) - bisect.bisect_right(self.retracted, marker_seq)
        own = self.by_author.get(viewer_id, ())
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
                index.by_author.setdefault(author, []).append(seq)
        return index
