"""Event-sourced actors: decide in sync code, append optimistically, apply.

``EntityActor`` is the base of every actor that owns an entity in the event
stream. A command is validated against current state by ``decide`` (pure,
synchronous); the resulting events are appended with the entity's last
sequence as the expectation. If another writer (another process, or an
actor instance that was not passivated yet) appended first, the actor
catches up from the stream, decides again and retries, a bounded number of
times. A refusal or a no-op appends nothing, so it would never notice such a
writer: before answering one the actor catches up, and decides again if
anything was newer. State only changes in ``apply``, after the store
accepted the events. An actor that keeps part of its state in the stream
only (a room's old messages) reads what a command needs in ``prepare``,
before each ``decide``: the one place a decision may await.
"""

from __future__ import annotations

import abc
import time
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from actors import checkpoint
from actors.events import EntityRef, Envelope, Event, Recorded
from actors.ids import new_id
from actors.snapshot import SnapshotStore, Snapshottable, WriteTimes
from actors.store import EventStore
from chatto.errors import ChattoError, ConflictError, StaleWriteError


@attrs.frozen
class Decision:
    """What ``decide`` returns: events to append and the reply for the caller."""

    events: Sequence[Event] = ()
    reply: Any = None
    # Ids decided up front when the events' content depends on them (the
    # event id is part of the AAD of encrypted fields); else generated.
    event_ids: Sequence[str] = ()
    # A no-op whose reply holds even if another writer appended since this
    # actor loaded (an existing key, an existing DM): answered without first
    # catching up from the stream, which costs a round trip on hot paths.
    stale_ok: bool = False


@attrs.frozen
class Committed:
    """The reply of an entity actor: the decision's reply plus what was stored."""

    value: Any
    recorded: tuple[Recorded, ...]

    @property
    def last_seq(self) -> int:
        return self.recorded[-1].seq if self.recorded else 0


class EntityActor(abc.ABC):
    """Base class; subclasses implement ``apply`` and ``decide``."""

    def __init__(
        self,
        entity: EntityRef,
        store: EventStore,
        max_retries: int = 5,
        checkpoints: SnapshotStore | None = None,
    ) -> None:
        self.entity = entity
        self.store = store
        self.max_retries = max_retries
        # Stamps appended events (``Envelope.at_ms``); tests may set another.
        self.clock: Callable[[], float] = time.time
        self.last_seq = 0
        self.last_event_id = ""
        self.conflicts = 0
        # Only actors that can export their state keep checkpoints.
        self.checkpoints = checkpoints if isinstance(self, Snapshottable) else None
        self.checkpoint_every = checkpoint.EVERY_EVENTS
        # Shared by every actor of a kind: write durations for the metrics.
        self.checkpoint_times: WriteTimes | None = None
        self.unsaved = 0  # events applied since the checkpoint (or since empty)

    # --- to implement -------------------------------------------------------
    @abc.abstractmethod
    def apply(self, recorded: Recorded) -> None:
        """Fold one stored event into state. Must not fail for stored events."""

    @abc.abstractmethod
    def decide(self, command: Any) -> Decision:
        """Validate ``command`` against state; raise ``ChattoError`` to refuse."""

    async def prepare(self, command: Any) -> None:
        """Bring what ``decide`` needs for ``command`` into memory (default: nothing).

        Called before every attempt, so after a conflict it sees the state
        caught up. It may read the stream but must not change what ``apply``
        built: a decision is still taken on state as of ``last_seq``.
        """
        return None

    # --- runtime contract ---------------------------------------------------
    async def start(self) -> None:
        if self.checkpoints is not None:
            assert isinstance(self, Snapshottable)
            self.last_seq, self.last_event_id = await checkpoint.restore(
                self, self.checkpoints, self.entity.key
            )
        await self.catch_up()
        await self.save_checkpoint()

    async def passivate(self) -> None:
        """Called by the runtime when the actor retires idle: a last checkpoint."""
        await self.save_checkpoint()

    async def save_checkpoint(self) -> bool:
        """Write a checkpoint if enough events were applied since the last one."""
        if (
            self.checkpoints is None
            or self.checkpoint_every <= 0
            or self.unsaved < self.checkpoint_every
            or not self.last_event_id
        ):
            return False
        assert isinstance(self, Snapshottable)
        if await checkpoint.write(
            self,
            self.checkpoints,
            self.entity.key,
            self.last_seq,
            self.last_event_id,
            self.checkpoint_times,
        ):
            self.unsaved = 0
            return True
        return False

    async def _refreshed(self) -> bool:
        """Catch up; whether anything newer was stored by another writer."""
        before = self.last_seq
        await self.catch_up()
        return self.last_seq != before

    async def catch_up(self) -> None:
        """Apply every stored event newer than what this actor has seen."""
        for rec in await self.store.load(self.entity, self.last_seq):
            self.apply(rec)
            self.last_seq, self.last_event_id = rec.seq, rec.envelope.id
            self.unsaved += 1

    async def handle(self, command: Any) -> Committed:
        for _attempt in range(self.max_retries + 1):
            await self.prepare(command)
            try:
                decision = self.decide(command)
            except ChattoError:
                # A refusal is only as good as the state it was decided on:
                # another process may have changed the entity since this
                # actor loaded it, and no append would reveal that.
                if await self._refreshed():
                    continue
                raise
            if not decision.events:
                if not decision.stale_ok and await self._refreshed():
                    continue  # the same for a no-op ("already a member")
                return Committed(decision.reply, ())
            now = int(self.clock() * 1000)
            ids = list(decision.event_ids) or [new_id() for _ in decision.events]
            envs = [
                Envelope(i, self.entity, now, e) for i, e in zip(ids, decision.events, strict=True)
            ]
            try:
                seqs = await self.store.append(envs, self.last_seq)
            except StaleWriteError:
                self.conflicts += 1
                await self.catch_up()
                continue
            recorded = tuple(Recorded(s, e) for s, e in zip(seqs, envs, strict=True))
            for rec in recorded:
                self.apply(rec)
                self.last_seq, self.last_event_id = rec.seq, rec.envelope.id
            self.unsaved += len(recorded)
            return Committed(decision.reply, recorded)
        raise ConflictError(
            f"{self.entity.kind} changed concurrently {self.max_retries + 1} times; try again"
        )
