"""Every message id of a room, without an object per message (issue #22).

``IdIndex`` maps a message id to the stream sequence of its post. It keeps,
in stream order, two ``array('q')`` (64-bit id hashes, post sequences: 16
bytes per message, what a checkpoint stores) and an open-addressing table of
positions in them (``array('i')``, linear probing, at most 3/4 full: 5-11
bytes per message, rebuilt on restore). The hash is BLAKE2b of the id, the
same in every process. Two ids may share a hash (2^-64 per pair): whoever
reads the post back checks its id (``MessageWindow.load``).
"""

from __future__ import annotations

import base64
import hashlib
import sys
from array import array

MIN_CAPACITY = 1024


def id_hash(message_id: str) -> int:
    """A nonzero signed 64-bit hash of ``message_id`` (0 marks a free slot)."""
    digest = hashlib.blake2b(message_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little", signed=True) or 1


def pack(values: array[int]) -> str:
    """An integer array as base64 of its little-endian bytes (checkpoint form)."""
    if sys.byteorder == "big":  # pragma: no cover - little-endian hosts only here
        values = array(values.typecode, values)
        values.byteswap()
    return base64.b64encode(values.tobytes()).decode()


def unpack(text: str, typecode: str = "q") -> array[int]:
    """The inverse of ``pack``."""
    values = array(typecode)
    values.frombytes(base64.b64decode(text))
    if sys.byteorder == "big":  # pragma: no cover
        values.byteswap()
    return values


class IdIndex:
    """Message id -> post sequence, for every message a room ever had."""

    __slots__ = ("keys", "seqs", "slots")

    def __init__(self) -> None:
        self.keys = array("q")
        self.seqs = array("q")
        self.slots = array("i", bytes(4 * MIN_CAPACITY))  # position + 1; 0: free

    def __len__(self) -> int:
        return len(self.keys)

    def _slot(self, key: int) -> int:
        """The slot holding ``key``, or the free one where it would go."""
        slots, keys = self.slots, self.keys
        mask = len(slots) - 1
        i = key & mask
        while slots[i] and keys[slots[i] - 1] != key:
            i = (i + 1) & mask
        return i

    def add(self, message_id: str, seq: int) -> None:
        key = id_hash(message_id)
        self.keys.append(key)
        self.seqs.append(seq)
        self.slots[self._slot(key)] = len(self.keys)  # a repeated id: the newest
        if len(self.keys) * 4 > len(self.slots) * 3:
            self._rebuild(2 * len(self.slots))

    def get(self, message_id: str) -> int:
        """The post's sequence, or 0 if no message of the room has this id's hash."""
        pos = self.slots[self._slot(id_hash(message_id))]
        return self.seqs[pos - 1] if pos else 0

    def _rebuild(self, capacity: int) -> None:
        self.slots = array("i", bytes(4 * capacity))
        for pos, key in enumerate(self.keys, 1):
            self.slots[self._slot(key)] = pos

    def export(self) -> list[str]:
        return [pack(self.keys), pack(self.seqs)]

    @classmethod
    def restore(cls, row: list[str]) -> IdIndex:
        index = cls()
        index.keys, index.seqs = unpack(row[0]), unpack(row[1])
        if len(index.keys) != len(index.seqs):
            raise ValueError("the id index of a checkpoint has unequal columns")
        capacity = MIN_CAPACITY
        while len(index.keys) * 4 > capacity * 3:
            capacity *= 2
        index._rebuild(capacity)
        return index
