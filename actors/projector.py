"""The projector: one ordered pass over the whole event log, then live.

At start it replays every stored event into the read models and reports
``started`` only once it reached the head of the log as it was at start,
so nothing serves stale projections. Afterwards it routes each new event to
the read models and to the live hub (topic = the event's entity key).
``wait_for(seq)`` lets a writer wait until its own event is projected
(read-your-writes across processes and actors).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from contextlib import aclosing
from typing import Protocol

import trio

from actors.events import Recorded
from actors.hub import Hub
from actors.store import EventFeed
from chatto.errors import DeadlineError

log = logging.getLogger(__name__)


class ReadModel(Protocol):
    """A projection: folds events synchronously into query-friendly state.

    A model may also define ``async def prepare(batch)``: it runs before the
    batch is applied, for I/O the synchronous ``apply`` needs (unwrapping the
    keys of encrypted fields).
    """

    def apply(self, recorded: Recorded) -> None: ...


class Projector:
    """Feeds read models and the hub from the event feed."""

    def __init__(
        self,
        feed: EventFeed,
        models: Sequence[ReadModel],
        hub: Hub,
        topics: Callable[[Recorded], Iterable[str]] | None = None,
    ) -> None:
        self._feed = feed
        self._topics = topics or (lambda rec: (rec.envelope.entity.key,))
        self._models = list(models)
        self._preparers = [m for m in self._models if hasattr(m, "prepare")]
        self._hub = hub
        self.position = 0
        self.caught_up = False
        self.replayed = 0
        self._advanced = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Replay, report started, then follow the log forever."""
        head = await self._feed.head()
        if head <= self.position:
            self._mark_caught_up()
            task_status.started()
        async with aclosing(self._feed.follow(self.position)) as batches:
            async for batch in batches:
                for model in self._preparers:
                    await model.prepare(batch)
                for rec in batch:
                    self._project(rec)
                if batch:
                    self.position = max(self.position, batch[-1].seq)
                self._wake()
                if not self.caught_up and self.position >= head:
                    self._mark_caught_up()
                    task_status.started()

    def _mark_caught_up(self) -> None:
        self.caught_up = True
        self.replayed = self.position
        log.info("projector caught up at sequence %d", self.position)

    def _project(self, rec: Recorded) -> None:
        for model in self._models:
            try:
                model.apply(rec)
            except Exception:
                # One bad event must not stop every projection; it is logged
                # with its sequence so it can be investigated and replayed.
                log.exception("read model %s failed on seq %d", type(model).__name__, rec.seq)
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
