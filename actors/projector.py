"""The projector: one ordered pass over the whole event log, then live.

At start it replays every stored event into the read models and reports
``started`` only once it reached the head of the log as it was at start,
so nothing serves stale projections. Afterwards it routes each new event to
the read models and to the live hub (topic = the event's entity key).
``wait_for(seq)`` lets a writer wait until its own event is projected
(read-your-writes across processes and actors).

With a ``SnapshotStore`` the start first restores the read models from the
newest valid snapshot and replays only what follows it; any problem with
the snapshot is one log line and a full replay (``actors.snapshot``).
``serve_snapshots`` writes new ones in the background once caught up.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Protocol, runtime_checkable

import attrs
import trio

from actors.events import Recorded
from actors.hub import Hub
from actors.snapshot import (
    RESTORE_ERRORS,
    SnapshotStore,
    Snapshottable,
    WriteTimes,
    check_anchor,
    check_schemas,
    decode_snapshot,
    encode_snapshot,
    erases_data,
    gc_paused,
    unusable_reason,
)
from actors.store import EventFeed
from chatto.errors import ChattoError, DeadlineError

log = logging.getLogger(__name__)

# A head the projector was shown this long ago and still has not reached
# means it stalled (under load it trails the head, but keeps reaching it).
STALL_SECONDS = 15.0


class ReadModel(Protocol):
    """A projection: folds events synchronously into query-friendly state.

    A model may also define ``async def prepare(batch)``: it runs before the
    batch is applied, for I/O the synchronous ``apply`` needs (unwrapping the
    keys of encrypted fields).
    """

    def apply(self, recorded: Recorded) -> None: ...


@runtime_checkable
class HasObjects(Protocol):
    """A snapshottable model that keeps part of its state as separate objects
    in the snapshot store (the rooms' history indexes, ``actors/rooms/resident.py``)."""

    async def persist_objects(self, seq: int) -> None:
        """Write what changed as new objects, before the state naming them is exported."""
        ...

    async def snapshot_saved(self) -> None:
        """The snapshot naming them was saved: delete what is no longer named."""
        ...


@attrs.frozen
class SnapshotPolicy:
    """When to write snapshots once caught up: after ``every_events`` events
    (or after an event that erased data), never more often than ``min_interval``."""

    every_events: int = 100_000
    min_interval: float = 300.0
    check_interval: float = 1.0


class Projector:
    """Feeds read models and the hub from the event feed."""

    def __init__(
        self,
        feed: EventFeed,
        models: Sequence[ReadModel],
        hub: Hub,
        topics: Callable[[Recorded], Iterable[str]] | None = None,
        snapshots: SnapshotStore | None = None,
        policy: SnapshotPolicy | None = None,
    ) -> None:
        self._feed = feed
        self._topics = topics or (lambda rec: (rec.envelope.entity.key,))
        self._models = list(models)
        self._preparers = [m for m in self._models if hasattr(m, "prepare")]
        self._hub = hub
        self.position = 0
        self.last_event_id = ""
        self.caught_up = False
        self.replayed = 0
        self.restored_seq = 0
        self._advanced = trio.Event()
        self._store = snapshots if snapshots is not None and self._snapshottable() else None
        self._policy = policy or SnapshotPolicy()
        self._written_seq = 0
        self.write_times = WriteTimes()
        self._erased = False
        self._write_lock = trio.Lock()
        # Read models change only under this lock (the projector's batches);
        # a snapshot export holds it so state and position agree.
        self._models_lock = trio.Lock()
        self._behind: tuple[float, int] | None = None  # (since, head seen then)

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Restore (if a snapshot fits), replay, report started, then follow forever."""
        if self._store is not None:
            await self._restore(self._store)
        head = await self._feed.head()
        if head <= self.position:
            self._mark_caught_up()
            task_status.started()
        async with aclosing(self._feed.follow(self.position)) as batches:
            async for batch in batches:
                # Held per batch: a snapshot export (in a worker thread) waits
                # for a whole batch, and batches wait for the export.
                async with self._models_lock:
                    for model in self._preparers:
                        await model.prepare(batch)
                    self._hub.refill_fast()
                    for rec in batch:
                        self._project(rec)
                    if batch and batch[-1].seq > self.position:
                        self.position, self.last_event_id = batch[-1].seq, batch[-1].envelope.id
                self._wake()
                if not self.caught_up and self.position >= head:
                    self._mark_caught_up()
                    task_status.started()

    def stalled(self, head: int, within: float | None = None) -> bool:
        """Whether a stream head shown ``within`` seconds ago is still not projected.

        Readiness calls this with the current head. Trailing the head is
        normal under load; not reaching a given head for ``within`` seconds
        is not (a stuck consumer, a read model that blocks), and live
        delivery stops with it.
        """
        limit = STALL_SECONDS if within is None else within
        now = trio.current_time()
        if self.position >= head:
            self._behind = None
            return False
        if self._behind is None or self.position >= self._behind[1]:
            self._behind = (now, head)
            return False
        return now - self._behind[0] > limit

    def _mark_caught_up(self) -> None:
        self.caught_up = True
        self.replayed = self.position - self.restored_seq
        log.info(
            "projector caught up at sequence %d (%d events replayed)", self.position, self.replayed
        )

    def _project(self, rec: Recorded) -> None:
        for model in self._models:
            try:
                model.apply(rec)
            except Exception:
                # One bad event must not stop every projection; it is logged
                # with its sequence so it can be investigated and replayed.
                log.exception("read model %s failed on seq %d", type(model).__name__, rec.seq)
        self._erased = self._erased or erases_data(rec)
        if self.caught_up:
            for topic in self._topics(rec):
                self._hub.publish(topic, rec)

    def _wake(self) -> None:
        self._advanced.set()
        self._advanced = trio.Event()

    async def wait_for(self, seq: int, within: float = 5.0) -> None:
        """Return once the event at ``seq`` has been projected."""
        with trio.move_on_after(within):
            while self.position < seq:
                await self._advanced.wait()
            return
        raise DeadlineError(f"projection did not reach sequence {seq} in {within:g}s")

    # --- snapshots ------------------------------------------------------------
    def _snapshottable(self) -> bool:
        """Snapshots need every model to be restorable or to keep no history."""
        for model in self._models:
            if not isinstance(model, Snapshottable) and not getattr(model, "replay_free", False):
                log.warning(
                    "projector snapshots disabled: read model %s cannot be snapshotted",
                    type(model).__name__,
                )
                return False
        return True

    def _snapshot_models(self) -> list[Snapshottable]:
        return [m for m in self._models if isinstance(m, Snapshottable)]

    async def _restore(self, store: SnapshotStore) -> None:
        """Restore from the stored snapshot if it fits this log; else leave models empty."""
        models = self._snapshot_models()
        blank = [m.export_state() for m in models]
        try:
            data = await store.load()
            if data is None:
                # A fresh install has neither: nothing to say about replaying.
                if await self._feed.head() > 0:
                    log.info("no projector snapshot stored: replaying the whole event log")
                return
            snap = decode_snapshot(data)
            check_schemas(snap, models)
            await check_anchor(snap, store)
            with gc_paused():
                for model in models:
                    await model.restore_state(snap.models[model.snapshot_name])
        except RESTORE_ERRORS as exc:
            reason = unusable_reason(exc)
            log.warning("projector snapshot not used (%s): replaying the whole event log", reason)
            for model, state in zip(models, blank, strict=True):
                await model.restore_state(state)
            return
        self.position = self.restored_seq = self._written_seq = snap.seq
        self.last_event_id = snap.event_id
        log.info("projector restored from the snapshot at sequence %d", snap.seq)

    def export_states(self) -> dict[str, tuple[int, object]]:
        """Every snapshottable model's (schema, exported state), at ``position``."""
        with gc_paused():
            return {
                m.snapshot_name: (m.snapshot_schema, m.export_state())
                for m in self._snapshot_models()
            }

    async def write_snapshot(self) -> bool:
        """Write a snapshot of the current state if it is newer than the last one."""
        store = self._store
        if store is None or not self.caught_up:
            return False
        async with self._write_lock:
            if self.position <= self._written_seq or not self.last_event_id:
                return False
            started = trio.current_time()
            ok = await self._write_snapshot(store)
            self.write_times.record(trio.current_time() - started, ok)
            return ok

    async def _write_snapshot(self, store: SnapshotStore) -> bool:
        try:
            # Exported in a worker thread while no batch is applied, so
            # state and position agree and the loop keeps serving reads
            # (models are only read meanwhile); encoded off the loop too
            # (a private copy: safe to abandon on cancellation).
            async with self._models_lock:
                seq, event_id = self.position, self.last_event_id
                erased, self._erased = self._erased, False
                await self.persist_objects()  # written before the snapshot names them
                states = await trio.to_thread.run_sync(self.export_states)
            data = await trio.to_thread.run_sync(
                encode_snapshot,
                seq,
                event_id,
                states,
                int(time.time() * 1000),
                abandon_on_cancel=True,
            )
        except Exception:
            # A model that cannot export is a bug to fix, not a reason to
            # stop the server: starts keep working with a full replay.
            self._erased = self._erased or erased
            log.exception("projector snapshot at sequence %d could not be encoded", seq)
            return False
        try:
            await store.save(data)
        except ChattoError as exc:
            self._erased = self._erased or erased
            log.warning("projector snapshot at sequence %d not written (%s)", seq, exc.code)
            return False
        self._written_seq = seq
        log.info("projector snapshot written at sequence %d (%d bytes)", seq, len(data))
        await self.snapshot_saved()
        return True

    async def persist_objects(self) -> None:
        """Models' own snapshot objects (``HasObjects``) for the state at
        ``position``; the caller holds the models still (``_models_lock``)."""
        for model in self._snapshot_models():
            if isinstance(model, HasObjects):
                await model.persist_objects(self.position)

    async def snapshot_saved(self) -> None:
        """A snapshot was saved: models delete the objects it no longer names."""
        for model in self._snapshot_models():
            if isinstance(model, HasObjects):
                try:
                    await model.snapshot_saved()
                except ChattoError as exc:
                    log.warning("superseded snapshot objects not deleted (%s)", exc.code)

    async def serve_snapshots(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Write snapshots in the background as ``SnapshotPolicy`` says, forever."""
        task_status.started()
        p = self._policy
        last_write = trio.current_time()
        while True:
            await trio.sleep(p.check_interval)
            due = self.position - self._written_seq >= p.every_events or (
                self._erased and self.position > self._written_seq
            )
            if due and trio.current_time() - last_write >= p.min_interval:
                last_write = trio.current_time()
                await self.write_snapshot()
