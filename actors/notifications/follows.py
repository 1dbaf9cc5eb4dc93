"""Per user, the threads they follow, as one sorted ``array('q')`` each (issue #22).

A thread is named by a key, ``room number << 40 | the root's stream
sequence``: 8 bytes a follow instead of a dict entry and a root id string.
Room numbers are interned here (one list of room ids). The reverse map, who
follows a thread, lives in the room's history index
(``actors/rooms/followers.py``), loaded only with the room.
"""

from __future__ import annotations

import base64
import bisect
from array import array
from typing import Any

SEQ_BITS = 40  # stream sequences below 2**40 (10^12 events)
SEQ_MASK = (1 << SEQ_BITS) - 1


class Follows:
    """User -> sorted thread keys; room ids interned to numbers."""

    def __init__(self) -> None:
        self.rooms: list[str] = []
        self._numbers: dict[str, int] = {}
        self.by_user: dict[str, array[int]] = {}

    def _key(self, room_id: str, seq: int, add: bool) -> int:
        number = self._numbers.get(room_id, -1)
        if number < 0:
            if not add:
                return -1
            number = self._numbers[room_id] = len(self.rooms)
            self.rooms.append(room_id)
        if not 0 < seq <= SEQ_MASK:
            raise ValueError(f"stream sequence {seq} out of range")
        return number << SEQ_BITS | seq

    def add(self, user_id: str, room_id: str, seq: int) -> None:
        keys = self.by_user.setdefault(user_id, array("q"))
        key = self._key(room_id, seq, add=True)
        i = bisect.bisect_left(keys, key)
        if i == len(keys) or keys[i] != key:
            keys.insert(i, key)

    def remove(self, user_id: str, room_id: str, seq: int) -> None:
        keys, key = self.by_user.get(user_id), self._key(room_id, seq, add=False)
        if keys is None or key < 0:
            return
        i = bisect.bisect_left(keys, key)
        if i < len(keys) and keys[i] == key:
            del keys[i]

    def has(self, user_id: str, room_id: str, seq: int) -> bool:
        keys, key = self.by_user.get(user_id), self._key(room_id, seq, add=False)
        if not keys or key < 0:
            return False
        i = bisect.bisect_left(keys, key)
        return i < len(keys) and keys[i] == key

    def of(self, user_id: str) -> list[tuple[str, int]]:
        """(room id, root sequence) of every thread the user follows."""
        return [(self.rooms[k >> SEQ_BITS], k & SEQ_MASK) for k in self.by_user.get(user_id, ())]

    def forget(self, user_id: str) -> None:
        self.by_user.pop(user_id, None)

    def export(self) -> dict[str, Any]:
        return {
            "rooms": list(self.rooms),
            "by_user": {
                u: base64.b64encode(k.tobytes()).decode() for u, k in self.by_user.items() if k
            },
        }

    @classmethod
    def restore(cls, row: dict[str, Any]) -> Follows:
        out = cls()
        out.rooms = list(row["rooms"])
        out._numbers = {room_id: n for n, room_id in enumerate(out.rooms)}
        for user, text in row["by_user"].items():
            keys = out.by_user[user] = array("q")
            keys.frombytes(base64.b64decode(text))
        return out
