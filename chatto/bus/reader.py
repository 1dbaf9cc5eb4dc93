"""Ordered stream readers and core subscriptions, pulled from Trio in batches.

An ordered JetStream consumer (or a core subscription) fills a bounded
buffer on the asyncio side; Trio pulls batches through the portal. For
ordered readers a full buffer simply stops reading (the nats-py pending
limit plus the server's flow control hold the rest); for live
subscriptions a full buffer marks the subscriber as a slow consumer and
ends it, so one slow reader never stalls the connection.
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
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from chatto.errors import BusyError

if TYPE_CHECKING:
    from chatto.bus.bridge import NatsBridge, StoredMsg

ORDERED_HEARTBEAT_SECONDS = 1.0


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


def _stored(msg: Any) -> StoredMsg:
    from chatto.bus.bridge import StoredMsg

    return StoredMsg(
        subject=msg.subject,
        seq=int(msg.metadata.sequence.stream),
        data=bytes(msg.data),
        headers=dict(msg.headers or {}),
        pending=int(msg.metadata.num_pending),
    )


@asynccontextmanager
async def open_reader(
    bridge: NatsBridge, stream: str, subject_filter: str, start_seq: int, max_buffer: int
) -> AsyncIterator[Callable[[int], Awaitable[list[StoredMsg]]]]:
    """Ordered consumer from ``start_seq``; yields ``next_batch(n)``."""
    js = bridge.js
    holder: dict[str, Any] = {}

    async def subscribe() -> None:
        sub = await js.subscribe(
            subject_filter,
            stream=stream,
            ordered_consumer=True,
            # nats-py re-creates an ordered consumer after two missed
            # heartbeats; on a cluster that is how a reader survives the loss
            # of the node holding its consumer (nats-py's default, 5 s, stalls
            # live delivery for 10-20 s).
            idle_heartbeat=ORDERED_HEARTBEAT_SECONDS,
            config=ConsumerConfig(
                deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                opt_start_seq=max(start_seq, 1),
                ack_policy=AckPolicy.NONE,
            ),
            # Overflowing this buffer would silently drop messages without the
            # ordered consumer noticing a gap, so it must be larger than the
            # flow-control window; flow control is what bounds it in practice.
            pending_msgs_limit=max_buffer,
            pending_bytes_limit=64 * 1024 * 1024,
        )
        holder["sub"] = sub

    async def take(n: int) -> list[StoredMsg]:
        sub = holder["sub"]
        first = await sub.next_msg(timeout=None)
        while first.headers and first.headers.get("Status"):
            first = await sub.next_msg(timeout=None)
        out = [_stored(first)]
        queue = sub._pending_queue  # nats-py has no public "drain what is queued"
        while len(out) < n and not queue.empty():
            msg = queue.get_nowait()
            sub._pending_size -= len(msg.data)
            if msg.headers and msg.headers.get("Status"):
                continue
            out.append(_stored(msg))
        return out

    async def unsubscribe() -> None:
        sub = holder.get("sub")
        if sub is not None:
            with contextlib.suppress(nats.errors.Error):
                await sub.unsubscribe()

    await bridge.call(subscribe)
    try:
        yield lambda n: bridge.call(lambda: take(n))
    finally:
        with trio.move_on_after(2, shield=True):
            await bridge.call(unsubscribe)


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
