"""Unread mention counting over a room's main timeline, without opening a body.

Per room, the main-timeline sequences of live (not retracted) messages that
mention each user, those that say @room, and the @room ones by author. For
a viewer whose read marker is at ``m``:

    mentions = (mentioning the viewer after m) + (@room after m)
               - (the viewer's own @room after m)

three bisections, O(log n). A message that says @room carries no
individual mentions (``chatto/messaging/mentions.py``) and nobody mentions
themself, so nothing counts twice.
"""

from __future__ import annotations

import bisect

import attrs


def _after(seqs: list[int], marker: int) -> int:
    return len(seqs) - bisect.bisect_right(seqs, marker)


def _drop(seqs: list[int], seq: int) -> None:
    i = bisect.bisect_left(seqs, seq)
    if i < len(seqs) and seqs[i] == seq:
        del seqs[i]


@attrs.define
class MentionIndex:
    """One room's mention sequences (derived state, rebuilt on restore)."""

    by_user: dict[str, list[int]] = attrs.Factory(dict)
    room: list[int] = attrs.Factory(list)
    room_by_author: dict[str, list[int]] = attrs.Factory(dict)

    def add(self, seq: int, author: str, users: tuple[str, ...], room: bool) -> None:
        for user in users:
            bisect.insort(self.by_user.setdefault(user, []), seq)
        if room:
            bisect.insort(self.room, seq)
            bisect.insort(self.room_by_author.setdefault(author, []), seq)

    def remove(self, seq: int, author: str, users: tuple[str, ...], room: bool) -> None:
        for user in users:
            _drop(self.by_user.get(user, []), seq)
        if room:
            _drop(self.room, seq)
            _drop(self.room_by_author.get(author, []), seq)

    def count(self, viewer: str, marker: int) -> int:
        """Messages after ``marker`` that mention ``viewer``."""
        mine = self.by_user.get(viewer)
        direct = _after(mine, marker) if mine else 0
        if not self.room:
            return direct
        own = self.room_by_author.get(viewer)
        return direct + _after(self.room, marker) - (_after(own, marker) if own else 0)
