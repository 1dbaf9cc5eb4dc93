"""The bounded cache of history pages read back from the stream.

Pages hold ``MessageView``s exactly like the hot read model: sealed bodies,
never plaintext. The rooms read model owns the cache and forgets a page as
soon as an event changes one of its messages (edit, reaction, retraction,
a reply in one of its threads), a whole room when a member's messages are
purged, and everything when an account is deleted, so erasure reaches the
cache in the same projector batch that records it. A read that was under
way while its room changed is not put back (``generation``).
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from actors.rooms.directory import MessageView

Key = tuple[str, int, int, int]  # room, first seq, last seq, length


class PageCache:
    """LRU of at most ``max_pages`` pages; counters for /readyz and metrics."""

    def __init__(self, max_pages: int = 256) -> None:
        self.max_pages = max_pages
        self._pages: OrderedDict[Key, list[MessageView]] = OrderedDict()
        self._by_room: dict[str, set[Key]] = {}
        self._generations: dict[str, int] = {}
        self._epoch = 0
        self.hits = self.misses = self.evicted = self.forgotten = 0

    def generation(self, room_id: str) -> tuple[int, int]:
        return self._epoch, self._generations.get(room_id, 0)

    def get(self, key: Key) -> list[MessageView] | None:
        views = self._pages.get(key)
        if views is None:
            self.misses += 1
            return None
        self._pages.move_to_end(key)
        self.hits += 1
        return views

    def put(self, key: Key, views: list[MessageView], generation: tuple[int, int]) -> None:
        """Keep a page read while the room was at ``generation`` (else drop it)."""
        if self.max_pages <= 0 or generation != self.generation(key[0]):
            return
        self._pages[key] = views
        self._pages.move_to_end(key)
        self._by_room.setdefault(key[0], set()).add(key)
        while len(self._pages) > self.max_pages:
            old, _ = self._pages.popitem(last=False)
            self._unindex(old)
            self.evicted += 1

    def _unindex(self, key: Key) -> None:
        keys = self._by_room.get(key[0])
        if keys is not None:
            keys.discard(key)
            if not keys:
                del self._by_room[key[0]]

    def _bump(self, room_id: str) -> None:
        self._generations[room_id] = self._generations.get(room_id, 0) + 1

    def forget(self, room_id: str, seq: int) -> None:
        """A message at ``seq`` changed: drop the room's pages that span it."""
        self._bump(room_id)
        for key in [k for k in self._by_room.get(room_id, ()) if k[1] <= seq <= k[2]]:
            del self._pages[key]
            self._unindex(key)
            self.forgotten += 1

    def forget_room(self, room_id: str) -> None:
        self._bump(room_id)
        for key in list(self._by_room.pop(room_id, ())):
            del self._pages[key]
            self.forgotten += 1

    def clear(self) -> None:
        self._epoch += 1
        self.forgotten += len(self._pages)
        self._pages.clear()
        self._by_room.clear()

    def statistics(self) -> dict[str, int]:
        return {
            "pages": len(self._pages),
            "max_pages": self.max_pages,
            "views": sum(len(v) for v in self._pages.values()),
            "hits": self.hits,
            "misses": self.misses,
            "evicted": self.evicted,
            "forgotten": self.forgotten,
        }
