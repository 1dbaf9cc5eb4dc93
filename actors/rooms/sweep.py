"""Deleting room index objects that no process references (issue #22).

Objects are deleted by the process that replaced them, one snapshot later
(``resident.IndexCache.saved``). What that misses: objects written by a
process that died before its main snapshot named them, those of a process
that replayed from zero while another's snapshot was the newest, and every
object of an older rooms schema after an upgrade. Deleting "what the newest
main snapshot does not name" would be wrong in a cluster: each process
references its own objects, and only its own snapshot names them.

So every process writes a **manifest** next to the objects
(``idx.refs.<token>``: the time and every object name it references) after
each main snapshot it saves, after a restore, and at least every
``MANIFEST_EVERY`` seconds while it spills during a long replay. A sweep
deletes an index object only if no manifest written within ``STALE_AFTER``
names it, the sweeping process does not reference it, and it was stored
more than ``GRACE`` ago (written, then named by its writer's next
manifest); manifests older than ``STALE_AFTER`` (their process is gone)
are deleted too. An unreadable manifest stops the sweep: nothing is
deleted on a guess. Processes of a version without manifests lose their
unreferenced objects after ``GRACE``; their loads then fail and they
restart (a rolling upgrade replaces them anyway).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Protocol

from actors.snapshot import SnapshotError

log = logging.getLogger(__name__)

MANIFEST = "idx.refs."
GRACE = 3600.0  # an object younger than this may not be in its writer's manifest yet
STALE_AFTER = 24 * 3600.0  # a manifest this old: its process is gone
MANIFEST_EVERY = 600.0  # while spilling without snapshots (a long replay)


class ListedObjects(Protocol):
    async def get(self, name: str) -> bytes: ...

    async def put(self, name: str, data: bytes) -> None: ...

    async def delete(self, name: str) -> None: ...

    async def listing(self, prefix: str) -> dict[str, float]:
        """Stored objects whose name starts with ``prefix``: name -> when
        stored (Unix seconds)."""
        ...


async def write_manifest(
    objects: ListedObjects, token: str, refs: Iterable[str], now: float
) -> None:
    data = {"token": token, "at": now, "refs": sorted(refs)}
    await objects.put(MANIFEST + token, json.dumps(data, separators=(",", ":")).encode())


async def sweep(objects: ListedObjects, prefix: str, token: str, own: set[str], now: float) -> int:
    """Delete unreferenced index objects (see the module); how many."""
    keep = set(own)
    for name in await objects.listing(MANIFEST):
        if name == MANIFEST + token:
            continue
        try:
            manifest = json.loads(await objects.get(name))
            at, refs = float(manifest["at"]), manifest["refs"]
        except (SnapshotError, ValueError, KeyError, TypeError):
            log.warning("room index sweep skipped: manifest %s unreadable", name)
            return 0
        if now - at > STALE_AFTER:
            await objects.delete(name)
        else:
            keep.update(refs)
    doomed = [
        name
        for name, stored in (await objects.listing(prefix)).items()
        if name not in keep and now - stored > GRACE
    ]
    for name in doomed:
        await objects.delete(name)
    if doomed:
        log.info("room index sweep deleted %d unreferenced objects", len(doomed))
    return len(doomed)
