"""The hot window of the rooms read model (issue #22): which views stay in memory.

Per room, a ``MessageView`` stays while its sequence is at or after the
``max_messages``-th newest message of the main timeline: the newest main
timeline messages, the replies of their threads (a reply comes after its
root) and late replies to older threads until the main timeline moves past
them; but never more than ``2 * max_messages`` views per room (a busy
thread would otherwise hold any number), oldest out first. At most
``max_rooms`` rooms hold views; the least recently posted to or read loses
all of its views first. 0 means no bound.

A view that leaves is simply dropped: what the projector needs about any
message is in the room's compact columns (``actors/rooms/index.py``), and
pages are read back from the stream (``chatto/messaging/cold.py``). A
retracted message leaves its timelines too when it leaves the window (or
at once if it was cold when retracted): its stored post is erased, so from
then on it is absent, exactly as after a replay from zero.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from actors.rooms.views import MessageView, RoomView


class HotWindow:
    """The bounds, the rooms that hold views (least recently used first), counters."""

    def __init__(self, max_messages: int = 200, max_rooms: int = 2000) -> None:
        self.max_messages = max_messages
        self.max_rooms = max_rooms
        self.rooms: OrderedDict[str, None] = OrderedDict()
        self.evicted = 0  # views dropped from the window
        self.rooms_evicted = 0

    def leaving(self, room: RoomView) -> list[MessageView]:
        """Take the room's views that fell below its window out of ``room.hot``."""
        # ``room.hot`` is a suffix of the room's posts: with at most
        # ``max_messages`` views none is below the newest that many.
        if not self.max_messages or len(room.hot) <= self.max_messages:
            return []
        line: Sequence[int]
        if room.resident is not None:
            line = room.resident.timeline.seqs
        else:  # not loaded (a restore): the timeline's tail is the window's main views
            line = [s for s, v in room.hot.items() if not v.thread_root or v.echo]
        bound = line[-self.max_messages] if len(line) >= self.max_messages else 0
        out = []
        hot = room.hot
        while hot and (next(iter(hot)) < bound or len(hot) > 2 * self.max_messages):
            out.append(hot.popitem(last=False)[1])
        self.evicted += len(out)
        return out

    def touch(self, room_id: str) -> str | None:
        """``room_id`` was used; the room that must give up its views, if any."""
        self.rooms[room_id] = None
        self.rooms.move_to_end(room_id)
        if self.max_rooms and len(self.rooms) > self.max_rooms:
            self.rooms_evicted += 1
            return self.rooms.popitem(last=False)[0]
        return None

    def refresh(self, room_id: str) -> None:
        """The room was read: it keeps its views longer (if it has any)."""
        if room_id in self.rooms:
            self.rooms.move_to_end(room_id)

    def empty(self, room: RoomView) -> list[MessageView]:
        """Take every view of the room out of ``room.hot``."""
        out = list(room.hot.values())
        room.hot.clear()
        self.rooms.pop(room.id, None)
        self.evicted += len(out)
        return out

    def restore(
        self, order: list[str], rooms: dict[str, RoomView]
    ) -> list[tuple[RoomView, MessageView]]:
        """After a snapshot's views are back in ``room.hot``: the order of use,
        and the views beyond the bounds (which may be smaller than when written)."""
        self.rooms = OrderedDict.fromkeys(order)
        out = [(room, view) for room in rooms.values() for view in self.leaving(room)]
        while self.max_rooms and len(self.rooms) > self.max_rooms:
            coldest = rooms.get(self.rooms.popitem(last=False)[0])
            if coldest is not None:
                out.extend((coldest, view) for view in self.empty(coldest))
        return out

    def statistics(self) -> dict[str, int]:
        return {
            "hot_rooms": len(self.rooms),
            "max_hot_rooms": self.max_rooms,
            "max_hot_messages": self.max_messages,
            "hot_evicted": self.evicted,
            "hot_rooms_evicted": self.rooms_evicted,
        }


def drop_retracted(room: RoomView, seq: int, root_id: str, main: bool, tombstone: bool) -> None:
    """A retracted message leaves its timelines (and unread counts), as on a replay.

    ``tombstone``: it was counted as a retracted message on the main
    timeline until now (a hot tombstone leaving the window).
    """
    if main and room.timeline.remove(seq) and tombstone:
        room.unread.dropped(seq)
    if root_id:
        thread = room.threads.get(root_id)
        if thread is not None and thread.remove(seq) and not thread.seqs:
            del room.threads[root_id]
