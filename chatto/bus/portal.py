"""The thread portal between Trio and the asyncio loop that runs nats-py.

nats-py only speaks asyncio, so it lives on its own event loop in a worker
thread. Trio tasks hand coroutine factories to that loop and wait for the
result on a ``trio.Event``. Both directions coalesce wake-ups: a burst of
calls costs one ``call_soon_threadsafe`` and a burst of completions one
``run_sync_soon``, which is what makes the bridge keep up with raw nats-py.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any, Generic, TypeVar

import trio

T = TypeVar("T")


class _Call(Generic[T]):
    """One cross-thread call: created in Trio, run in asyncio, settled in Trio."""

    __slots__ = ("cancelled", "done", "error", "factory", "result", "task")

    def __init__(self, factory: Callable[[], Awaitable[T]]) -> None:
        self.factory = factory
        self.done = trio.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.task: asyncio.Future[T] | None = None
        self.cancelled = False


class Portal:
    """Runs coroutines on a private asyncio loop thread on behalf of Trio tasks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, token: trio.lowlevel.TrioToken) -> None:
        self._loop = loop
        self._token = token
        self._lock = threading.Lock()
        self._outbox: deque[_Call[Any]] = deque()
        self._outbox_scheduled = False
        self._inbox: deque[_Call[Any]] = deque()
        self._inbox_scheduled = False
        self._closed = False
        self.calls = 0
        self.wakeups_asyncio = 0
        self.wakeups_trio = 0

    async def run(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run ``factory()`` on the asyncio loop and return its result in Trio.

        Cancelling the Trio caller cancels the asyncio task too (best effort:
        a publish already on the wire may still be stored by the server).
        """
        if self._closed:
            raise RuntimeError("portal is closed")
        call: _Call[T] = _Call(factory)
        self.calls += 1
        with self._lock:
            self._outbox.append(call)
            schedule = not self._outbox_scheduled
            self._outbox_scheduled = True
        if schedule:
            self.wakeups_asyncio += 1
            self._loop.call_soon_threadsafe(self._drain_outbox)
        try:
            await call.done.wait()
        except trio.Cancelled:
            self._cancel(call)
            raise
        if call.error is not None:
            raise call.error
        return call.result  # type: ignore[return-value]

    def close(self) -> None:
        """Refuse new calls; calls in flight still settle."""
        self._closed = True

    def _cancel(self, call: _Call[Any]) -> None:
        call.cancelled = True
        task = call.task
        if task is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(task.cancel)

    # --- asyncio thread ---------------------------------------------------
    def _drain_outbox(self) -> None:
        with self._lock:
            calls = list(self._outbox)
            self._outbox.clear()
            self._outbox_scheduled = False
        for call in calls:
            if not call.cancelled:
                call.task = self._loop.create_task(self._run_call(call))

    async def _run_call(self, call: _Call[Any]) -> None:
        # One coroutine per call that settles itself: cheaper than a task plus
        # a done-callback, and a failing factory is reported like any error.
        try:
            call.result = await call.factory()
        except asyncio.CancelledError:
            call.error = trio.BrokenResourceError("asyncio task was cancelled")
        except BaseException as exc:  # handed to the Trio caller, re-raised there
            call.error = exc
        finally:
            self._settle(call)

    def _settle(self, call: _Call[Any]) -> None:
        with self._lock:
            self._inbox.append(call)
            schedule = not self._inbox_scheduled
            self._inbox_scheduled = True
        if schedule:
            self.wakeups_trio += 1
            # If Trio is gone, nobody is waiting any more.
            with contextlib.suppress(trio.RunFinishedError):
                self._token.run_sync_soon(self._drain_inbox)

    # --- trio thread ------------------------------------------------------
    def _drain_inbox(self) -> None:
        with self._lock:
            calls = list(self._inbox)
            self._inbox.clear()
            self._inbox_scheduled = False
        for call in calls:
            call.done.set()


class LoopThread:
    """Owns a fresh asyncio loop running forever in a daemon thread."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._main, name="nats-asyncio", daemon=True)

    def _main(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_forever()
        # Tasks nats-py left behind (a subscription's message task whose
        # unsubscribe never ran) are cancelled and awaited here: destroyed
        # pending, they log an ERROR at some later garbage collection.
        leftover = asyncio.all_tasks(self.loop)
        for task in leftover:
            task.cancel()
        if leftover:
            gathered = asyncio.gather(*leftover, return_exceptions=True)
            self.loop.run_until_complete(gathered)
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    def start(self) -> None:
        self._thread.start()

    async def stop(self) -> None:
        """Stop the loop and wait (in a worker thread) for the thread to end."""
        if not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self.loop.stop)
        await trio.to_thread.run_sync(self._thread.join, 5.0)
