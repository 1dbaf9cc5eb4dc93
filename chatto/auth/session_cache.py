"""A per-process cache of session records: a request need not read NATS KV
for its credential every time (one portal round trip per HTTP request).

Safe because every way a session ends reaches this cache:

- revocation (logout, revoke-token, rotation, revoke-all on password change
  or deletion) deletes the key and announces it; every process's
  ``CredentialWatch`` hears the notice (flushed before the revoke answers)
  and calls ``forget``;
- a password change or an account deletion also changes the user's
  generation in the in-memory directory, which the caller checks on every
  request whatever this cache holds;
- a notice can be lost (a reconnect, a process that died between deleting
  a key and announcing it): the watch calls ``clear`` when it may have
  missed one, and no entry is trusted for longer than ``max_age`` (1 s), so
  a deletion nobody announced still ends access everywhere within it.

A read that started before a ``forget``/``clear`` does not put its (possibly
stale) record back afterwards (``epoch``).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

import attrs

MAX_AGE = 1.0
MAX_ENTRIES = 50_000


@attrs.frozen
class CacheStatistics:
    entries: int
    hits: int
    misses: int
    forgotten: int
    clears: int


class SessionCache:
    """Session record documents by key, each trusted for ``max_age`` seconds."""

    def __init__(
        self,
        max_age: float = MAX_AGE,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_age = max_age
        self.max_entries = max_entries
        self._clock = clock
        self._items: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self.epoch = 0
        self._hits = self._misses = self._forgotten = self._clears = 0

    def get(self, key: str) -> dict[str, Any] | None:
        """A copy of the cached record, or None (absent or too old)."""
        entry = self._items.get(key)
        if entry is None or self._clock() - entry[0] > self.max_age:
            if entry is not None:
                del self._items[key]
            self._misses += 1
            return None
        self._hits += 1
        return dict(entry[1])

    def put(self, key: str, doc: dict[str, Any], epoch: int) -> None:
        """Remember ``doc`` (read at ``epoch``) unless a session ended since the read began."""
        if epoch != self.epoch:
            return
        self._items[key] = (self._clock(), dict(doc))
        self._items.move_to_end(key)
        while len(self._items) > self.max_entries:
            self._items.popitem(last=False)

    def forget(self, keys: Sequence[str]) -> None:
        """These sessions ended (or moved to a successor)."""
        self.epoch += 1
        for key in keys:
            if self._items.pop(key, None) is not None:
                self._forgotten += 1

    def clear(self) -> None:
        """A notice may have been missed: trust nothing cached."""
        self.epoch += 1
        self._clears += 1
        self._items.clear()

    def statistics(self) -> CacheStatistics:
        return CacheStatistics(
            len(self._items), self._hits, self._misses, self._forgotten, self._clears
        )
