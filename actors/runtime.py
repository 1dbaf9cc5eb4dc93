"""The actor runtime: bounded mailboxes, ask/tell, passivation, crash isolation.

An actor is one task that owns its state and handles one command at a time.
The ``ActorSystem`` starts actors on demand inside its own nursery, stops
(passivates) actors that stay idle, and contains crashes: a crashing actor
fails its waiting callers with ``ActorCrashedError`` and is dropped; the next
command starts a fresh one from the stream. Mailboxes are bounded: a full one
makes ``ask`` wait (back-pressure, within its timeout) and ``tell`` fail.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any, Protocol

import attrs
import trio

from chatto.errors import BusyError, ChattoError, DeadlineError, UnavailableError

log = logging.getLogger(__name__)

# Loads slower than this are logged (a very long room or user history).
SLOW_START_SECONDS = 1.0


class ActorCrashedError(ChattoError):
    """The actor raised an unexpected error; it was restarted. Retry the command."""

    code = "ACTOR_CRASHED"


@attrs.frozen
class RuntimeSettings:
    """Tunables from ``[actors]``."""

    mailbox_size: int = 256
    ask_timeout: float = 10.0
    idle_seconds: float = 300.0
    max_append_retries: int = 5


class Actor(Protocol):
    """What the runtime drives. ``start`` loads state; ``handle`` serves a command."""

    async def start(self) -> None: ...

    async def handle(self, command: Any) -> Any: ...


ActorFactory = Callable[[str], Actor]


class _Request:
    __slots__ = ("abandoned", "command", "done", "error", "reply")

    def __init__(self, command: Any) -> None:
        self.command = command
        self.done = trio.Event()
        self.reply: Any = None
        self.error: ChattoError | None = None
        self.abandoned = False

    def fail(self, error: ChattoError) -> None:
        if not self.done.is_set():
            self.error = error
            self.done.set()


@attrs.define
class _Cell:
    actor: Actor
    send: trio.MemorySendChannel[_Request]
    recv: trio.MemoryReceiveChannel[_Request]
    loading: bool = True  # until ``actor.start()`` returned


@attrs.define
class ActorStats:
    """Counters for health pages, tests and benchmarks."""

    started: int = 0
    passivated: int = 0
    crashed: int = 0
    handled: int = 0


class ActorSystem:
    """Registry and supervisor of actors. Open with ``open_actor_system``."""

    def __init__(self, settings: RuntimeSettings, nursery: trio.Nursery) -> None:
        self.settings = settings
        self._nursery = nursery
        self._factories: dict[str, ActorFactory] = {}
        self._cells: dict[tuple[str, str], _Cell] = {}
        self.stats = ActorStats()

    def register(self, kind: str, factory: ActorFactory) -> None:
        """Declare how to build actors of ``kind`` from an id."""
        if kind in self._factories:
            raise ValueError(f"actor kind {kind!r} registered twice")
        self._factories[kind] = factory

    def live_count(self) -> int:
        """Actors currently running (not passivated)."""
        return len(self._cells)

    def is_live(self, kind: str, ident: str) -> bool:
        return (kind, ident) in self._cells

    async def ask(self, kind: str, ident: str, command: Any, *, within: float | None = None) -> Any:
        """Send ``command`` and wait for the reply; ``DeadlineError`` after ``within`` s."""
        req = _Request(command)
        limit = self.settings.ask_timeout if within is None else within
        cell: _Cell | None = None
        try:
            with trio.move_on_after(limit) as scope:
                cell = await self._deliver(kind, ident, req)
                await req.done.wait()
        finally:
            if not req.done.is_set():
                req.abandoned = True
        if scope.cancelled_caught:
            if cell is not None and cell.loading:
                # The load goes on without this caller: a retry soon finds
                # the actor ready (it stays loaded until idle).
                raise DeadlineError(
                    f"the {kind} is still loading its history (over {limit:g}s); try again shortly"
                )
            raise DeadlineError(f"{kind} actor did not answer within {limit:g}s (busy?)")
        if req.error is not None:
            raise req.error
        return req.reply

    def tell(self, kind: str, ident: str, command: Any) -> None:
        """Queue ``command`` without waiting; ``BusyError`` if the mailbox is full."""
        req = _Request(command)
        for _ in range(3):
            cell = self._cell(kind, ident)
            try:
                cell.send.send_nowait(req)
                return
            except trio.WouldBlock as exc:
                raise BusyError(f"{kind} actor mailbox is full") from exc
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                continue  # passivating right now; the next cell is fresh
        raise BusyError(f"{kind} actor is restarting")

    async def _deliver(self, kind: str, ident: str, req: _Request) -> _Cell:
        while True:
            cell = self._cell(kind, ident)
            try:
                await cell.send.send(req)
                return cell
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                await trio.lowlevel.checkpoint()  # passivated under us: spawn anew

    def _cell(self, kind: str, ident: str) -> _Cell:
        key = (kind, ident)
        cell = self._cells.get(key)
        if cell is None:
            factory = self._factories.get(kind)
            if factory is None:
                raise ValueError(f"unknown actor kind {kind!r}")
            send, recv = trio.open_memory_channel[_Request](self.settings.mailbox_size)
            cell = _Cell(actor=factory(ident), send=send, recv=recv)
            self._cells[key] = cell
            self.stats.started += 1
            self._nursery.start_soon(self._run, key, cell, name=f"actor:{kind}:{ident}")
        return cell

    def _retire(self, key: tuple[str, str], cell: _Cell) -> None:
        if self._cells.get(key) is cell:
            del self._cells[key]
        cell.send.close()

    async def _run(self, key: tuple[str, str], cell: _Cell) -> None:
        try:
            started = trio.current_time()
            try:
                await cell.actor.start()
            except Exception:
                log.exception("actor %s:%s failed to start", *key)
                self.stats.crashed += 1
                self._retire(key, cell)
                self._fail_queued(cell, ActorCrashedError("actor failed to load; retry"))
                return
            cell.loading = False
            took = trio.current_time() - started
            if took >= SLOW_START_SECONDS:
                log.info("actor %s:%s took %.1fs to load", *key, took)
            await self._loop(key, cell)
        finally:
            self._retire(key, cell)
            self._fail_queued(cell, UnavailableError("actor stopped"))

    async def _loop(self, key: tuple[str, str], cell: _Cell) -> None:
        idle = self.settings.idle_seconds
        while True:
            req = None
            with trio.move_on_after(idle if idle > 0 else math.inf):
                req = await cell.recv.receive()
            if req is None:
                # Idle: stop taking new work, then finish what already queued.
                self._retire(key, cell)
                self.stats.passivated += 1
                while True:
                    try:
                        req = cell.recv.receive_nowait()
                    except (trio.WouldBlock, trio.EndOfChannel):
                        break
                    if not await self._serve(key, cell, req):
                        return
                await self._passivate(key, cell)
                return
            elif not await self._serve(key, cell, req):
                return

    async def _passivate(self, key: tuple[str, str], cell: _Cell) -> None:
        """The actor's optional last word (entity actors write a checkpoint)."""
        passivate = getattr(cell.actor, "passivate", None)
        if passivate is None:
            return
        try:
            await passivate()
        except Exception:
            log.exception("actor %s:%s failed while passivating", *key)

    async def _serve(self, key: tuple[str, str], cell: _Cell, req: _Request) -> bool:
        """Handle one request; False if the actor crashed and must stop."""
        if req.abandoned:
            return True
        try:
            req.reply = await cell.actor.handle(req.command)
        except ChattoError as exc:
            req.fail(exc)
            return True
        except Exception:
            log.exception("actor %s:%s crashed handling %s", *key, type(req.command).__name__)
            self.stats.crashed += 1
            self._retire(key, cell)
            req.fail(ActorCrashedError("the command failed unexpectedly; retry"))
            self._fail_queued(cell, ActorCrashedError("actor restarted; retry"))
            return False
        self.stats.handled += 1
        req.done.set()
        return True

    @staticmethod
    def _fail_queued(cell: _Cell, error: ChattoError) -> None:
        while True:
            try:
                cell.recv.receive_nowait().fail(error)
            except (trio.WouldBlock, trio.EndOfChannel, trio.ClosedResourceError):
                return


@asynccontextmanager
async def open_actor_system(settings: RuntimeSettings) -> AsyncIterator[ActorSystem]:
    """Run an actor system for the duration of the block; actors die with it."""
    async with trio.open_nursery() as nursery:
        system = ActorSystem(settings, nursery)
        try:
            yield system
        finally:
            nursery.cancel_scope.cancel()
