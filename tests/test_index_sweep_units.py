"""Sweeping room index objects nobody references (issue #22), no I/O.

Processes of a cluster share the snapshot store; each references its own
objects, and only its own snapshot names them. A sweep must delete what a
dead process leaked, what an older version left, and nothing a live process
references — even objects no main snapshot names.
"""

from __future__ import annotations

from actors.rooms.directory import RoomDirectory
from actors.rooms.events import MessagePosted, RoomCreated
from actors.rooms.indexblob import MAGIC
from actors.rooms.resident import PREFIX, SWEEP_EVERY
from actors.rooms.sweep import GRACE, MANIFEST, STALE_AFTER, sweep, write_manifest
from tests.test_room_index_lazy_units import ROOMS, Objects, Twins

HOUR = 3600.0


async def _process(objects: Objects, seed_posts: int) -> Twins:
    """A process (its own directory and token) with its rooms' objects stored."""
    twins = Twins(objects)
    lazy = twins.lazy
    lazy.indexes.clock = lambda: objects.now
    for room_id in ROOMS[:2]:
        await twins.add(room_id, RoomCreated(room_id, "", "channel", "u1"))
        for _ in range(seed_posts):
            await twins.add(room_id, MessagePosted("u1", "sealed", 1))
    await lazy.persist_objects(twins.seq)
    await lazy.snapshot_saved()  # its manifest, and (first save) a sweep
    return twins


def _refs(twins: Twins) -> set[str]:
    return {r.index_ref for r in twins.lazy.rooms.values() if r.index_ref}


async def test_a_sweep_keeps_what_live_processes_reference_and_deletes_the_rest() -> None:
    objects = Objects()
    a = await _process(objects, 3)
    b = await _process(objects, 4)  # the same rooms, other objects: only its manifest names them
    assert _refs(a) and _refs(b) and not _refs(a) & _refs(b)
    assert objects.indexes() == _refs(a) | _refs(b)  # b's first sweep kept a's
    # A dead process: its manifest and objects, a day and more ago.
    dead = f"{PREFIX}roomX.5.deadbeef.0123456789abcdef"
    await objects.put(dead, MAGIC + b"x")
    await write_manifest(objects, "deadbeef", [dead], objects.now - STALE_AFTER - HOUR)
    # An object of an older version: no manifest names it.
    await objects.put(f"{PREFIX}roomY.7.0ld0ld00.fedcba9876543210", MAGIC + b"y")
    for name in (dead, f"{MANIFEST}deadbeef", f"{PREFIX}roomY.7.0ld0ld00.fedcba9876543210"):
        objects.stored[name] -= STALE_AFTER + HOUR
    objects.now += GRACE + HOUR  # a's and b's objects are past the grace now
    # Just written, not yet in any manifest: kept by the grace.
    fresh = f"{PREFIX}roomZ.9.f00df00d.0011223344556677"
    await objects.put(fresh, MAGIC + b"z")
    objects.now += GRACE / 2
    await write_manifest(objects, b.lazy.indexes.token, _refs(b), objects.now)  # b is alive

    swept = await sweep(objects, PREFIX, a.lazy.indexes.token, _refs(a), objects.now)
    assert swept == 2
    assert objects.indexes() == _refs(a) | _refs(b) | {fresh}
    assert f"{MANIFEST}deadbeef" not in objects.data  # its process is gone
    # b still loads its rooms from its own objects.
    await b.lazy.prepare([])
    for room_id in ROOMS[:2]:
        b.lazy.rooms[room_id].resident = None
        await b.lazy.ensure(room_id)
        assert b.lazy.rooms[room_id].timeline == b.full.rooms[room_id].timeline


async def test_an_unreadable_manifest_stops_the_sweep() -> None:
    objects = Objects()
    orphan = f"{PREFIX}roomY.7.0ld0ld00.fedcba9876543210"
    await objects.put(orphan, MAGIC + b"y")
    await objects.put(f"{MANIFEST}broken00", b"{not json")
    objects.now += STALE_AFTER + HOUR
    assert await sweep(objects, PREFIX, "mine", set(), objects.now) == 0
    assert orphan in objects.data


async def test_a_process_sweeps_at_its_first_save_then_every_few() -> None:
    objects = Objects()
    orphan = f"{PREFIX}roomY.7.0ld0ld00.fedcba9876543210"
    await objects.put(orphan, MAGIC + b"y")
    objects.now += GRACE + 1
    a = await _process(objects, 2)  # its first save swept
    assert orphan not in objects.data and a.lazy.cache_statistics()["index_swept"] == 1
    await objects.put(orphan, MAGIC + b"y")
    objects.now += GRACE + 1
    for _ in range(SWEEP_EVERY - 1):
        await a.lazy.snapshot_saved()
    assert orphan in objects.data  # not yet
    await a.lazy.snapshot_saved()
    assert orphan not in objects.data and a.lazy.cache_statistics()["index_swept"] == 2
    # Its manifest names what it references.
    assert objects.indexes() == _refs(a)


async def test_a_restore_writes_the_manifest_at_once() -> None:
    objects = Objects()
    a = await _process(objects, 2)
    state = a.lazy.export_state()
    again = RoomDirectory(0, 5, 2, 1, objects)
    again.indexes.clock = lambda: objects.now
    del objects.data[f"{MANIFEST}{a.lazy.indexes.token}"]  # a is gone
    await again.restore_state(state)
    objects.now += STALE_AFTER - HOUR  # a's objects: only the new process references them
    assert await sweep(objects, PREFIX, "other", set(), objects.now) == 0
    assert objects.indexes() == _refs(a)
