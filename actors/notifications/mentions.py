"""Unread mention counting over a room's main timeline, without opening a body.

Per room, the sequences of live (not retracted) messages that mention each
user, those that say @room, and the @room ones by author, as sorted
``array('q')`` (8 bytes an entry, no object per message). For a viewer
whose read marker is at ``m``:

    mentions = (mentioning the viewer after m) + (@room after m)
               - (the viewer's own @room after m)

three bisections, O(log n). A message that says @room carries no
individual mentions (``chatto/messaging/mentions.py``) and nobody mentions
themself, so nothing counts twice. The notification feed keeps one index
for the main timeline (counted) and one for thread replies (only so an
edit or retraction knows what a reply mentioned); ``of`` answers what one
message mentions, so no per-message record is kept.
"""

from __future__ import annotations

import base64
import bisect
from array import array
from typing import Any

import attrs


def _after(seqs: array[int], marker: int) -> int:
    return len(seqs) - bisect.bisect_right(seqs, marker)


def _has(seqs: array[int] | None, seq: int) -> bool:
    if not seqs:
        return False
    i = bisect.bisect_left(seqs, seq)
    return i < len(seqs) and seqs[i] == seq


def _drop(seqs: array[int] | None, seq: int) -> None:
    if seqs is None:
        return
    i = bisect.bisect_left(seqs, seq)
    if i < len(seqs) and seqs[i] == seq:
        del seqs[i]


def _put(seqs: array[int], seq: int) -> None:
    if not _has(seqs, seq):
        bisect.insort(seqs, seq)


def _seqs() -> array[int]:
    return array("q")


def _b64(seqs: array[int]) -> str:
    return base64.b64encode(seqs.tobytes()).decode()


def _from_b64(text: str) -> array[int]:
    seqs = _seqs()
    seqs.frombytes(base64.b64decode(text))
    return seqs


@attrs.define
class MentionIndex:
    """One room's mention sequences (part of the notification snapshot)."""

    by_user: dict[str, array[int]] = attrs.Factory(dict)
    room: array[int] = attrs.Factory(_seqs)
    room_by_author: dict[str, array[int]] = attrs.Factory(dict)

    def add(self, seq: int, author: str, users: tuple[str, ...], room: bool) -> None:
        for user in users:
            _put(self.by_user.setdefault(user, _seqs()), seq)
        if room:
            _put(self.room, seq)
            _put(self.room_by_author.setdefault(author, _seqs()), seq)

    def remove(self, seq: int, author: str, users: tuple[str, ...], room: bool) -> None:
        for user in users:
            _drop(self.by_user.get(user), seq)
        if room:
            _drop(self.room, seq)
            _drop(self.room_by_author.get(author), seq)

    def __bool__(self) -> bool:
        """Whether any live message of the room mentions anyone."""
        return bool(self.room) or any(self.by_user.values())

    def of(self, seq: int) -> tuple[tuple[str, ...], bool]:
        """Who the message at ``seq`` mentions (in the order users were first
        mentioned in the room) and whether it says @room; O(users · log n)."""
        users = tuple(user for user, seqs in self.by_user.items() if _has(seqs, seq))
        return users, _has(self.room, seq)

    def forget(self, user: str) -> None:
        """A deleted user: no count is kept for them (their own @room
        messages are retracted by the account's purge)."""
        self.by_user.pop(user, None)

    def count(self, viewer: str, marker: int) -> int:
        """Messages after ``marker`` that mention ``viewer``."""
        mine = self.by_user.get(viewer)
        direct = _after(mine, marker) if mine else 0
        if not self.room:
            return direct
        own = self.room_by_author.get(viewer)
        return direct + _after(self.room, marker) - (_after(own, marker) if own else 0)

    def export(self) -> dict[str, Any]:
        return {
            "by_user": {u: _b64(s) for u, s in self.by_user.items() if s},
            "room": _b64(self.room),
            "room_by_author": {u: _b64(s) for u, s in self.room_by_author.items() if s},
        }

    @classmethod
    def restore(cls, row: dict[str, Any]) -> MentionIndex:
        return cls(
            {u: _from_b64(s) for u, s in row["by_user"].items()},
            _from_b64(row["room"]),
            {u: _from_b64(s) for u, s in row["room_by_author"].items()},
        )
