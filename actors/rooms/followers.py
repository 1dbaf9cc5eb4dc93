"""Thread followers in a room's history index (issue #22).

Who follows a thread (the notification feed's THREAD_REPLY recipients)
grows with the number of threads, so it lives in the room's ``RoomIndex``:
loaded with it, evicted with it, written in its object. Per thread root id,
a sorted ``array('i')`` of interned user numbers (``Authors``): 4 bytes a
follower, no user id in the stored object.
"""

from __future__ import annotations

import bisect
import sys
from array import array


def add(followers: dict[str, array[int]], root_id: str, number: int) -> bool:
    """Whether ``number`` was added to the thread's followers."""
    users = followers.get(root_id)
    if users is None:
        users = followers[sys.intern(root_id)] = array("i")
    i = bisect.bisect_left(users, number)
    if i < len(users) and users[i] == number:
        return False
    users.insert(i, number)
    return True


def remove(followers: dict[str, array[int]], root_id: str, number: int) -> bool:
    """Whether ``number`` was among the thread's followers (now removed)."""
    users = followers.get(root_id)
    if users is None or number < 0:
        return False
    i = bisect.bisect_left(users, number)
    if i == len(users) or users[i] != number:
        return False
    del users[i]
    if not users:
        del followers[root_id]
    return True
