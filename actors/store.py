"""What the domain needs from storage, as protocols the shell implements."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Sequence
from typing import Protocol

from actors.events import EntityRef, Envelope, Recorded


class EventStore(Protocol):
    """Per-entity append with optimistic concurrency, and per-entity reads."""

    async def append(self, envelopes: Sequence[Envelope], expected_seq: int) -> list[int]:
        """Append in order if the entity's last sequence is ``expected_seq``.

        Returns the stream sequence of each envelope. Raises
        ``chatto.errors.ConflictError`` (a ``WrongLastSequenceError``) when
        someone else appended first.
        """
        ...

    async def load(self, entity: EntityRef, after_seq: int = 0) -> list[Recorded]:
        """Every stored event of ``entity`` after ``after_seq``, in order."""
        ...

    async def last_seq(self, entity: EntityRef) -> int:
        """The sequence of the entity's newest event (0 if none)."""
        ...

    async def get(self, entity: EntityRef, seqs: Sequence[int]) -> list[Recorded | None]:
        """The entity's events stored at ``seqs``, in that order.

        None where nothing of the entity is stored there (erased by a
        retraction, another entity's, never stored). For scattered old
        events: direct reads by sequence, not a scan of the entity.
        """
        ...


class EventFeed(Protocol):
    """The whole event log, for the projector."""

    async def head(self) -> int:
        """The newest sequence in the log right now (0 if empty)."""
        ...

    def follow(self, after_seq: int) -> AsyncGenerator[list[Recorded], None]:
        """Batches of every event after ``after_seq``, then live ones, forever."""
        ...
