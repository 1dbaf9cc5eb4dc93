"""Compact per-room columns over every post of a room's history (issue #22).

The rooms read model keeps ``MessageView`` objects only for a hot window;
what the projector must still know synchronously about any message of the
room's history (who wrote it, its thread, whom it replies to, whether it is
an echo or retracted) lives here, a few bytes per message and no Python
object per message:

- ``IdIndex``: open addressing over 64-bit hashes of message ids (the same
  in every process, so it can be snapshotted) to a post's position, in
  tables that are never rehashed. A look-up that leads to a stored event is checked against that
  event's id (``ColdReader.message``); the synchronous facts trust the hash
  (two ids of one room colliding on 64 bits: ~n²/2⁶⁵).
- ``Posts``: parallel arrays indexed by position (posts arrive in stream
  order, so every column is append-only and ``seqs`` is sorted): sequence,
  author (an index into the directory-wide ``Authors``), thread root's
  sequence, the replied message's author, flags. Thread roots' ids (one
  string per thread, not per message) map a root's sequence back to its id.

About 50 bytes per message with the index at its load bound.
"""

from __future__ import annotations

import base64
import bisect
import hashlib
import sys
from array import array
from typing import Any

import attrs

ECHO, RETRACTED = 1, 2
_MAX_LOAD = 0.6


_MASK = (1 << 64) - 1
_SIGN = 1 << 63


def id_hash(message_id: str) -> int:
    """A non-zero signed 64-bit hash of an id, equal in every process.

    Ids from ``new_id`` (26 letters and digits) are read as one base-36
    number, folded to 64 bits and mixed: cheaper than BLAKE2b, which every
    other id gets.
    """
    if len(message_id) == 26 and message_id.isalnum() and message_id.isascii():
        n = int(message_id, 36)
        # Ids made in one millisecond are consecutive numbers: mixed
        # (splitmix64's finaliser) so they do not fill adjacent slots.
        n = ((n ^ (n >> 64) ^ (n >> 30)) * 0xBF58476D1CE4E5B9) & _MASK
        n = ((n ^ (n >> 27)) * 0x94D049BB133111EB) & _MASK
        n ^= n >> 31
    else:
        digest = hashlib.blake2b(message_id.encode(), digest_size=8).digest()
        n = int.from_bytes(digest, "little")
    return (n - (1 << 64) if n & _SIGN else n) or 1


class _Table:
    """One open-addressing table: 64-bit id hashes and positions."""

    __slots__ = ("count", "keys", "vals")

    def __init__(self, size: int) -> None:
        self.keys = array("q", bytes(8 * size))
        self.vals = array("i", bytes(4 * size))
        self.count = 0


class IdIndex:
    """Message id hash -> position; linear probing in tables that never move.

    A full table (load 0.6) is not rehashed: a new one twice its size takes
    the next ids, so adding never stops the projector for a pass over
    history (a rehash in Python took ~0.4 s at a million ids). A look-up
    tries the newest table first; a room of a million messages has about a
    dozen tables, and most ids are in the last two.
    """

    __slots__ = ("count", "tables")

    def __init__(self, first: int = 64) -> None:
        self.tables = [_Table(first)]
        self.count = 0

    def __len__(self) -> int:
        return self.count

    def slots(self) -> int:
        return sum(len(t.keys) for t in self.tables)

    def add(self, message_id: str, position: int) -> None:
        table = self.tables[-1]
        keys = table.keys
        if table.count + 1 > _MAX_LOAD * len(keys):
            table = _Table(2 * len(keys))
            self.tables.append(table)
            keys = table.keys
        key = id_hash(message_id)
        mask = len(keys) - 1
        i = key & mask
        while keys[i]:
            i = (i + 1) & mask
        keys[i] = key
        table.vals[i] = position
        table.count += 1
        self.count += 1

    def find(self, message_id: str) -> int:
        """The position of ``message_id``, or -1."""
        key = id_hash(message_id)
        for table in reversed(self.tables):
            keys = table.keys
            mask = len(keys) - 1
            i = key & mask
            while keys[i]:
                if keys[i] == key:
                    return table.vals[i]
                i = (i + 1) & mask
        return -1

    def export(self) -> list[list[Any]]:
        return [[t.count, _b64(t.keys), _b64(t.vals)] for t in self.tables]

    @classmethod
    def restore(cls, rows: list[list[Any]]) -> IdIndex:
        index = cls()
        index.tables = []
        for count, keys, vals in rows:
            table = _Table(0)
            table.keys.frombytes(base64.b64decode(keys))
            table.vals.frombytes(base64.b64decode(vals))
            table.count = int(count)
            index.tables.append(table)
        index.count = sum(t.count for t in index.tables)
        return index


def _b64(column: array[int]) -> str:
    return base64.b64encode(column.tobytes()).decode()


class Authors:
    """Directory-wide interning of author ids to small integers."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self._index: dict[str, int] = {}

    def index(self, author_id: str) -> int:
        found = self._index.get(author_id)
        if found is None:
            found = self._index[author_id] = len(self.ids)
            self.ids.append(sys.intern(author_id))
        return found

    def find(self, author_id: str) -> int:
        return self._index.get(author_id, -1)

    def export(self) -> list[str]:
        return list(self.ids)

    @classmethod
    def restore(cls, ids: list[str]) -> Authors:
        authors = cls()
        for author_id in ids:
            authors.index(author_id)
        return authors


@attrs.frozen
class Facts:
    """What the projector knows about any message of a room, hot or cold."""

    id: str
    room_id: str
    seq: int
    author_id: str
    thread_root: str  # "" for a top-level message
    echo: bool
    retracted: bool
    replied_author: str  # author of the message it replies to ("" if none or unknown)


_COLUMNS = (("seqs", "q"), ("authors", "i"), ("roots", "q"), ("replied", "i"), ("flags", "B"))


class Posts:
    """One room's columns, by position (= order of posting)."""

    __slots__ = ("authors", "flags", "ids", "replied", "root_ids", "roots", "seqs")

    def __init__(self) -> None:
        self.seqs = array("q")
        self.authors = array("i")
        self.roots = array("q")  # thread root's seq, 0 for none
        self.replied = array("i")  # author index of the replied message, -1 for none
        self.flags = array("B")
        self.ids = IdIndex()
        self.root_ids: dict[int, str] = {}  # thread root's seq -> its id

    def __len__(self) -> int:
        return len(self.seqs)

    def add(
        self, message_id: str, seq: int, author: int, root: str, replied: int, echo: bool
    ) -> None:
        root_seq = 0
        if root:
            at = self.ids.find(root)
            if at >= 0:
                root_seq = self.seqs[at]
                self.root_ids[root_seq] = root
        self.ids.add(message_id, len(self.seqs))
        self.seqs.append(seq)
        self.authors.append(author)
        self.roots.append(root_seq)
        self.replied.append(replied)
        self.flags.append(ECHO if echo else 0)

    def find(self, message_id: str) -> int:
        return self.ids.find(message_id)

    def at_seq(self, seq: int) -> int:
        """The position of the post stored at ``seq``, or -1."""
        i = bisect.bisect_left(self.seqs, seq)
        return i if i < len(self.seqs) and self.seqs[i] == seq else -1

    def retract(self, position: int) -> None:
        self.flags[position] |= RETRACTED

    def export(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            name: base64.b64encode(getattr(self, name).tobytes()).decode() for name, _ in _COLUMNS
        }
        out["index"] = self.ids.export()
        out["root_ids"] = {str(s): i for s, i in self.root_ids.items()}
        return out

    @classmethod
    def restore(cls, row: dict[str, Any]) -> Posts:
        posts = cls()
        for name, code in _COLUMNS:
            column = array(code)
            column.frombytes(base64.b64decode(row[name]))
            setattr(posts, name, column)
        posts.ids = IdIndex.restore(row["index"])
        posts.root_ids = {int(s): sys.intern(str(i)) for s, i in row["root_ids"].items()}
        return posts
