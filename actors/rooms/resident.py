"""Which rooms' history indexes are in memory (issue #22, "Bounded read models").

A room's ``RoomIndex`` (timelines, threads, unread, touch and id indexes,
post columns, attachment map: everything that grows with its history) is
either resident or stored as its own object in the snapshot store, named
``idx.room.<room id>.<seq>.<process token>.<sha-256 prefix>`` (the sequence
it is as of, a random token of the writing process, so names never clash
across a cluster, and a digest of its bytes). The main snapshot references these
objects instead of embedding the arrays, so a start reads room metadata and
hot windows only; an index is read back when a batch or a reader needs it
(``IndexCache.ensure``).

At most ``max_rooms`` indexes, and at most ``max_bytes`` of them by
``estimate`` (0: no byte bound), stay resident, least recently used out first,
but only clean ones (stored and unchanged since): a changed ("dirty") index
stays until it is written: by the next snapshot, or by the projector's
``prepare`` when only dirty indexes are left beyond the bound (a full
replay, which writes no snapshot until it is caught up, or a burst of
activity): the least recently used are written then and evicted, so the
count stays at the bound plus the current batch's rooms. Without a store
nothing is evicted.
The rooms of the projector's current batch are pinned from its ``prepare``
to the next one, so a reader's load never evicts what the batch applies to.

An object replaced by a newer one is deleted after the main snapshot
*following* the one that stopped referencing it is saved: one snapshot
interval of grace for the other processes of a cluster, which may still
reference it until they apply the same change. One that no export named
(written since the last one) is deleted as soon as it is replaced.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from typing import Any, Protocol

import trio

from actors.rooms.hot import drop_retracted
from actors.rooms.index import Authors
from actors.rooms.indexblob import pack, unpack
from actors.rooms.indexrows import index_from_row, index_row
from actors.rooms.sweep import MANIFEST_EVERY, sweep, write_manifest
from actors.rooms.views import RoomIndex, RoomView
from actors.snapshot import SnapshotError
from chatto.concurrency import for_each_bounded

log = logging.getLogger(__name__)

PREFIX = "idx.room."
# Index objects written at once when a snapshot (or a spill) writes many.
WRITES_AT_ONCE = 8
# Saves between sweeps for objects nobody references (sweep.py): at the
# default 300 s snapshot interval, hourly.
SWEEP_EVERY = 12


class IndexObjects(Protocol):
    """Where index objects live (the NATS ``SNAPSHOTS`` object store)."""

    async def get(self, name: str) -> bytes:
        """The object's bytes; ``SnapshotError`` if it is missing or damaged."""
        ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def delete(self, name: str) -> None: ...

    async def names(self, prefix: str) -> set[str]:
        """Names of the stored objects that start with ``prefix``."""
        ...

    async def listing(self, prefix: str) -> dict[str, float]:
        """The same, each with when it was stored (Unix seconds)."""
        ...


def estimate(index: RoomIndex) -> int:
    """About how many bytes ``index`` holds, from its lengths (O(1)).

    Calibrated against ``tracemalloc`` on decoded indexes of the benchmark's
    big room (10 % thread replies): 0.64x the measured size at 11k posts
    (small id tables and fixed costs weigh more), 1.1x at 113k. Per post:
    the columns and timeline/unread arrays (~45 B) and 12 B per id-index
    slot; per thread its dict entries, timeline and root id (~450 B), and
    its followers' array (~120 B); per attachment its view (~400 B).
    """
    posts = index.posts
    return (
        4096
        + 12 * posts.ids.slots()
        + 45 * len(posts)
        + 16 * len(index.touches)
        + 450 * len(index.threads)
        + 200 * len(index.attached)
        + 120 * len(index.followers)
        + 400 * len(index.attachments)
    )


def encode_index(index: RoomIndex, authors: Authors) -> bytes:
    """An index object's bytes (``indexblob``: zlib level 1, 2.4x faster than
    level 6 on a 100k-post index and 10 % bigger; a spill or snapshot writes many)."""
    return pack(index_row(index, authors))


def decode_index(data: bytes, authors: Authors, room_id: str) -> RoomIndex:
    """The index in ``data``; ``ValueError`` if it is not an index object."""
    return index_from_row(unpack(data), authors, room_id)


class IndexCache:
    """Resident indexes (least recently used first), the dirty ones, counters."""

    def __init__(
        self,
        authors: Authors,
        max_rooms: int = 2000,
        objects: IndexObjects | None = None,
        max_bytes: int = 0,
    ) -> None:
        self.authors = authors  # the directory's: objects name authors by number
        self.max_rooms = max_rooms
        self.max_bytes = max_bytes  # 0: bounded by count only
        self.objects = objects
        self.resident: OrderedDict[str, RoomView] = OrderedDict()
        # ``estimate`` of each resident index, refreshed when it is loaded,
        # written, or was in the projector's last batch (the only writer).
        self.sizes: dict[str, int] = {}
        self.total_bytes = 0
        self.dirty: set[str] = set()
        self.pinned: set[str] = set()
        self.loaded = self.evicted = self.written = self.deleted = 0
        self.written_bytes = 0
        # In every name this process writes, so names never clash across a
        # cluster and an object it wrote after its last export is named by
        # no snapshot anywhere: replaced, it is deleted at once.
        self.token = secrets.token_hex(4)
        self._unsaved: set[str] = set()
        self._superseded: list[str] = []  # replaced since the last saved snapshot
        self._grace: list[str] = []  # replaced before it: deleted at the next save
        # Every object this process references (the directory sets it): its
        # manifest, so other processes' sweeps keep them (sweep.py).
        self.refs_of: Callable[[], set[str]] = set
        self.clock: Callable[[], float] = time.time
        self.swept = 0
        self._saves = 0
        self._manifest_at = 0.0

    def track(self, room: RoomView, dirty: bool = False) -> None:
        """A room whose index is resident (created, restored inline or loaded)."""
        if room.id not in self.resident:
            self._measure(room)
        self.resident[room.id] = room
        self.resident.move_to_end(room.id)
        if dirty:
            self.changed(room)

    def _measure(self, room: RoomView) -> None:
        size = estimate(room.resident) if room.resident is not None else 0
        self.total_bytes += size - self.sizes.get(room.id, 0)
        self.sizes[room.id] = size

    def _forget(self, room: RoomView) -> None:
        del self.resident[room.id]
        self.total_bytes -= self.sizes.pop(room.id, 0)

    def _within(self, rooms: int, size: int) -> bool:
        return rooms <= self.max_rooms and (self.max_bytes <= 0 or size <= self.max_bytes)

    def _over(self) -> bool:
        return not self._within(len(self.resident), self.total_bytes)

    def changed(self, room: RoomView) -> None:
        """The room's index changed: it stays resident until it is written."""
        if self.objects is not None:  # else never written, never evicted
            self.dirty.add(room.id)

    async def restored(self, rooms: Iterable[RoomView]) -> None:
        """After a restore: inline indexes are resident (and written at the next
        snapshot); ``ValueError`` if a referenced object is missing (a replay)."""
        self.resident.clear()
        self.sizes.clear()
        self.total_bytes = 0
        self.dirty.clear()
        self.pinned.clear()
        rooms = list(rooms)
        await self.check_refs({r.index_ref for r in rooms if r.resident is None and r.index_ref})
        for room in rooms:
            if room.resident is not None:
                self.track(room, dirty=True)
        if self.objects is not None:  # what it restored is referenced from now on
            await self._manifest()

    async def _manifest(self) -> None:
        assert self.objects is not None
        self._manifest_at = self.clock()
        await write_manifest(self.objects, self.token, self.refs_of(), self._manifest_at)

    def entry(self, room: RoomView, inline: bool = False) -> dict[str, Any]:
        """A snapshot's reference to the room's index: the stored object's name
        if it holds the index as it is now, else the index itself (always if
        ``inline``: tests comparing states; the index must be resident)."""
        if inline:
            return {"inline": index_row(room.index, self.authors)}
        index = room.resident  # read once: readers may evict a clean one meanwhile
        if index is None or (room.index_ref and room.id not in self.dirty):
            return {"ref": room.index_ref}
        return {"inline": index_row(index, self.authors)}

    async def ensure(self, rooms: Iterable[RoomView], pin: bool = False) -> None:
        """Load the rooms' indexes that are not resident, then evict beyond the bound.

        Never evicts these rooms: a caller that uses them right after (no
        ``await`` in between) finds them resident. ``pin``: they stay until
        the next pinned call (the projector's batch).
        """
        wanted = list(rooms)
        if pin:  # the last batch's rooms are the only ones the projector changed
            for room_id in self.pinned:
                if room_id in self.resident:
                    self._measure(self.resident[room_id])
        for room in wanted:
            if room.resident is None:
                try:
                    index = await self._load(room.index_ref, room.id)
                except (SnapshotError, ValueError):
                    if room.resident is None:
                        raise
                    index = room.resident  # loaded, changed and rewritten meanwhile
                if room.resident is None:  # not loaded meanwhile by another reader
                    room.resident = index
                    self.loaded += 1
                    self._apply_pending(room)
            self.track(room)
        keep = {room.id for room in wanted}
        if pin:
            self.pinned = keep
        self._trim(keep | self.pinned)

    async def _load(self, name: str, room_id: str) -> RoomIndex:
        if not name:
            return RoomIndex()
        if self.objects is None:
            raise ValueError(f"room index {name} referenced without a snapshot store")
        data = await self.objects.get(name)
        return await trio.to_thread.run_sync(decode_index, data, self.authors, room_id)

    def _apply_pending(self, room: RoomView) -> None:
        for seq, root, main, tombstone in room.pending:
            drop_retracted(room, seq, root, main, tombstone)
        if room.pending:
            room.pending.clear()
            self.changed(room)

    def _trim(self, keep: set[str]) -> None:
        """Evict clean indexes, least recently used first, until within both
        bounds (or only dirty and kept ones are left)."""
        if self.objects is None or self.max_rooms <= 0 or not self._over():
            return
        rooms, size = len(self.resident), self.total_bytes
        victims: list[RoomView] = []
        for room_id, room in self.resident.items():
            if self._within(rooms, size):
                break
            if room_id not in self.dirty and room_id not in keep:
                victims.append(room)
                rooms -= 1
                size -= self.sizes.get(room_id, 0)
        for room in victims:
            self._forget(room)
            room.resident = None
            self.evicted += 1

    def _excess(self) -> list[RoomView]:
        """Dirty, unpinned indexes to write now (least recently used first) so
        that, once evicted, the rest is within both bounds."""
        rooms, size = len(self.resident), self.total_bytes
        out: list[RoomView] = []
        for room_id, room in self.resident.items():
            if self._within(rooms, size):
                break
            if room_id in self.pinned:
                continue
            if room_id in self.dirty:
                out.append(room)
            rooms -= 1  # a clean one goes by the trim
            size -= self.sizes.get(room_id, 0)
        return out

    async def persist(self, rooms: dict[str, RoomView], seq: int) -> None:
        """Before an export: write every dirty index as a new object (the
        caller holds the models still)."""
        if self.objects is None:
            return
        todo = []
        for room_id in sorted(self.dirty):
            room = rooms.get(room_id)
            if room is None or room.resident is None:
                self.dirty.discard(room_id)
                continue
            todo.append(room)
        await self._write_all(todo, seq)
        self._unsaved.clear()  # every current object is named by the export
        self._trim(self.pinned)  # clean now: back to the bound

    async def spill(self, seq: int) -> None:
        """Over the bound with dirty indexes only (a replay, a burst of activity
        between snapshots): write the least recently used ones now, then evict
        them. The projector's ``prepare`` calls this, its models held still."""
        if self.objects is None or self.max_rooms <= 0 or not self._over():
            return
        await self._write_all(self._excess(), seq)
        self._trim(self.pinned)
        if self.clock() - self._manifest_at > MANIFEST_EVERY:  # a long replay
            await self._manifest()

    async def _write_all(self, rooms: list[RoomView], seq: int) -> None:
        """Write these rooms' indexes, ``WRITES_AT_ONCE`` at a time: the caller
        holds the models still, so the projector waits for all of them (one
        at a time, ~8 ms each here, 2,000 busy rooms held it ~16 s)."""

        async def one(room: RoomView) -> None:
            if room.resident is not None:
                await self._write(room, room.resident, seq)
                if room.id in self.resident:
                    self._measure(room)

        await for_each_bounded(rooms, one, WRITES_AT_ONCE)

    async def _write(self, room: RoomView, index: RoomIndex, seq: int) -> None:
        assert self.objects is not None
        data = await trio.to_thread.run_sync(encode_index, index, self.authors)
        digest = hashlib.sha256(data).hexdigest()[:16]
        if not room.index_ref.endswith(f".{digest}"):  # else: unchanged after all
            name = f"{PREFIX}{room.id}.{seq}.{self.token}.{digest}"
            await self.objects.put(name, data)
            old, room.index_ref = room.index_ref, name
            self._unsaved.add(name)
            self.written += 1
            self.written_bytes += len(data)
            if old in self._unsaved:  # named by no snapshot
                self._unsaved.discard(old)
                await self.objects.delete(old)
                self.deleted += 1
            elif old:
                self._superseded.append(old)
        self.dirty.discard(room.id)

    async def saved(self) -> None:
        """A main snapshot was saved: delete what the one before it stopped referencing."""
        if self.objects is None:
            return
        grace, self._grace, self._superseded = self._grace, self._superseded, []
        for name in grace:
            log.debug("deleting superseded room index object %s", name)
            await self.objects.delete(name)
            self.deleted += 1
        await self._manifest()
        self._saves += 1
        if self._saves % SWEEP_EVERY == 1:  # the first save after a start, then hourly
            own = self.refs_of() | set(self._grace)
            self.swept += await sweep(self.objects, PREFIX, self.token, own, self.clock())

    async def check_refs(self, refs: set[str]) -> None:
        """``ValueError`` unless every referenced object is stored (else: replay)."""
        if not refs:
            return
        if self.objects is None:
            raise ValueError("the snapshot references room index objects but there is no store")
        missing = refs - await self.objects.names(PREFIX)
        if missing:
            raise ValueError(f"{len(missing)} room index objects are missing ({min(missing)})")

    def statistics(self) -> dict[str, int]:
        return {
            "index_rooms": len(self.resident),
            # 0 without a snapshot store: nothing can be evicted (every index stays).
            "index_evictable": int(self.objects is not None),
            "max_index_rooms": self.max_rooms if self.objects is not None else 0,
            "index_bytes": self.total_bytes,
            "max_index_bytes": self.max_bytes if self.objects is not None else 0,
            "index_dirty": len(self.dirty),
            "index_loaded": self.loaded,
            "index_evicted": self.evicted,
            "index_written": self.written,
            "index_deleted": self.deleted,
            "index_swept": self.swept,
        }
