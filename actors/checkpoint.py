"""Entity checkpoints: a long entity's state at its last event, so a load
replays only what came after.

An entity actor (a room, above all) replays its whole history whenever it is
started: after a process start and after every passivation. At ~30k events
a second, a room of 300k messages outlives the ask deadline. An actor that
is ``Snapshottable`` and has a checkpoint store keeps one checkpoint object
(``actor.<kind>.<id>`` in the ``SNAPSHOTS`` object store), in the projector
snapshot format (``actors.snapshot``): the state, the sequence of the
entity's last event and that event's id as the anchor. It is written once
at least ``every_events`` events were applied since the last one — after a
long load and when the actor is passivated — never for small entities.

A checkpoint whose anchor event is gone (the stream was recreated or
restored, or that very event was erased by a retraction), whose schema is
another, or that cannot be read, is one log line and a full replay.
Checkpoints hold what the actor holds: ids, authors, sequences, digests;
never message bodies or other sealed data.
"""

from __future__ import annotations

import logging
import time

import trio

from actors.snapshot import (
    RESTORE_ERRORS,
    SnapshotStore,
    Snapshottable,
    WriteTimes,
    check_anchor,
    check_schemas,
    decode_snapshot,
    encode_snapshot,
    gc_paused,
    unusable_reason,
)
from chatto.errors import ChattoError

log = logging.getLogger(__name__)

# Entities with fewer events than this never get a checkpoint.
EVERY_EVENTS = 10_000


async def restore(actor: Snapshottable, store: SnapshotStore, name: str) -> tuple[int, str]:
    """Restore ``actor`` from its checkpoint; (sequence, event id) covered, or (0, "")."""
    blank = actor.export_state()
    try:
        data = await store.load()
        if data is None:
            return 0, ""
        snap = decode_snapshot(data)
        check_schemas(snap, [actor])
        await check_anchor(snap, store)
        with gc_paused():  # many objects at once: no collections meanwhile
            await actor.restore_state(snap.models[actor.snapshot_name])
    except RESTORE_ERRORS as exc:
        reason = unusable_reason(exc)
        log.warning("checkpoint of %s not used (%s): replaying its whole history", name, reason)
        await actor.restore_state(blank)
        return 0, ""
    return snap.seq, snap.event_id


async def write(
    actor: Snapshottable,
    store: SnapshotStore,
    name: str,
    seq: int,
    eid: str,
    times: WriteTimes | None = None,
) -> bool:
    """Store ``actor``'s state as of (``seq``, ``eid``); False (logged) if that failed."""

    def export() -> bytes:
        with gc_paused():
            states = {actor.snapshot_name: (actor.snapshot_schema, actor.export_state())}
        return encode_snapshot(seq, eid, states, int(time.time() * 1000))

    started = trio.current_time()
    try:
        # Off the loop: only the actor's own task changes its state, and it
        # waits here (it takes no command meanwhile).
        data = await trio.to_thread.run_sync(export)
        await store.save(data)
    except ChattoError as exc:
        log.warning("checkpoint of %s at sequence %d not written (%s)", name, seq, exc.code)
        if times is not None:
            times.record(trio.current_time() - started, False)
        return False
    if times is not None:
        times.record(trio.current_time() - started, True)
    log.info(
        "checkpoint of %s written at sequence %d (%d bytes, %.1fs)",
        name,
        seq,
        len(data),
        trio.current_time() - started,
    )
    return True
