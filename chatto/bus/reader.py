"""Ordered stream readers and core subscriptions, pulled from Trio in batches.

Stream readers are pull consumers that ask for no more than they can hold
(``chatto.bus.pull``), so a slow reader slows the reading, never loses
messages. A core subscription fills a bounded buffer on the asyncio side;
when it is full the subscriber is a slow consumer and is ended (told with
``BusyError``), so one slow live reader never stalls the connection.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Any

import nats.errors
import trio

from chatto.bus.pull import PullReader
from chatto.errors import BusyError

if TYPE_CHECKING:
    from chatto.bus.bridge import NatsBridge, StoredMsg


class _Buffer:
    """Loop-thread buffer of messages with a waiter for ``take``."""

    def __init__(self, limit: int) -> None:
        self.items: deque[Any] = deque()
        self.limit = limit
        self.ready = asyncio.Event()
        self.overflowed = False
        self.closed = False

    def push(self, item: Any) -> None:
        if len(self.items) >= self.limit:
            self.overflowed = True
        else:
            self.items.append(item)
        self.ready.set()

    async def take(self, n: int) -> list[Any]:
        while not self.items and not self.overflowed and not self.closed:
            self.ready.clear()
            await self.ready.wait()
        out: list[Any] = []
        while self.items and len(out) < n:
            out.append(self.items.popleft())
        return out


@asynccontextmanager
async def open_reader(
    bridge: NatsBridge, stream: str, subject_filter: str, start_seq: int, max_buffer: int
) -> AsyncIterator[Callable[[int], Awaitable[list[StoredMsg]]]]:
    """Ordered reader from ``start_seq`` holding at most ``max_buffer`` messages.

    Yields ``next_batch(n)``. A ``PullReader`` (``chatto.bus.pull``): it asks
    the server for no more than it has room for, so it never drops, and it
    re-reads from its last message after any lost delivery.
    """
    reader = PullReader(bridge.nc, bridge.js, stream, subject_filter, start_seq, max_buffer)
    await bridge.call(reader.open)
    try:
        yield lambda n: bridge.call(lambda: reader.take(n))
    finally:
        with trio.move_on_after(2, shield=True):
            await bridge.call(reader.close)


class Subscription:
    """A core NATS subscription delivered in Trio; iterate for message batches."""

    def __init__(self, bridge: NatsBridge, buffer: _Buffer) -> None:
        self._bridge = bridge
        self._buffer = buffer

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> list[tuple[str, bytes]]:
        buf = self._buffer
        items: list[tuple[str, bytes]] = await self._bridge.call(lambda: buf.take(256))
        if items:
            return items
        if buf.overflowed:
            raise BusyError("subscription dropped: slow consumer")
        raise StopAsyncIteration


@asynccontextmanager
async def open_subscription(
    bridge: NatsBridge, subject: str, capacity: int = 1024
) -> AsyncIterator[Subscription]:
    """Subscribe to core NATS ``subject``; at most ``capacity`` messages buffered."""
    nc = bridge.nc
    buf = _Buffer(capacity)
    holder: dict[str, Any] = {}

    async def on_msg(msg: Any) -> None:
        buf.push((msg.subject, bytes(msg.data)))

    async def subscribe() -> None:
        holder["sub"] = await nc.subscribe(subject, cb=on_msg)

    async def unsubscribe() -> None:
        buf.closed = True
        buf.ready.set()
        with contextlib.suppress(nats.errors.Error):
            await holder["sub"].unsubscribe()

    await bridge.call(subscribe)
    try:
        yield Subscription(bridge, buf)
    finally:
        with trio.move_on_after(2, shield=True):
            await bridge.call(unsubscribe)
