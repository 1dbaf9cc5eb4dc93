"""The Trio-facing NATS service: connection, JetStream publish and reads.

KV and object-store operations are ``BucketOps`` (``chatto.bus.buckets``),
which ``NatsBridge`` inherits.

Everything nats-py does runs on a private asyncio loop (see ``portal``); this
module exposes coarse operations that each cost one round trip through the
portal. nats-py errors are translated here into ``ChattoError`` subclasses so
no caller ever imports nats-py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import attrs
import nats
import nats.errors
import nats.js.errors
import trio
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from chatto.bus.batch import send_batch, until_a_stream_answers
from chatto.bus.buckets import BucketOps, KeyExistsError
from chatto.bus.connection import ConnectionEvents, connect_options, redact_url
from chatto.bus.portal import LoopThread, Portal
from chatto.bus.stats import BridgeStats
from chatto.errors import StaleWriteError, StartupError, UnavailableError

log = logging.getLogger(__name__)
T = TypeVar("T")

WRONG_LAST_SEQUENCE = 10071
# A clustered stream leader refuses a conditional publish with this code when
# an earlier, not yet committed proposal for the same subject is in flight: the
# same conflict as 10071, seen only on a NATS cluster (issue #12).
WRONG_LAST_SEQUENCE_IN_FLIGHT = 10164
# JetStream's limit on the messages of one atomic batch.
MAX_ATOMIC_BATCH = 1000


WrongLastSequenceError = StaleWriteError


@attrs.frozen
class NatsSettings:
    """How to reach NATS; built from config by the caller."""

    url: str
    token: str = ""
    user: str = ""
    password: str = ""
    creds_file: str = ""
    connect_timeout: float = 5.0
    request_timeout: float = 5.0


@attrs.frozen
class StoredMsg:
    """A message read back from a stream."""

    subject: str
    seq: int
    data: bytes
    headers: Mapping[str, str]
    pending: int = 0  # matching messages after this one when it was delivered


def translate(exc: BaseException) -> BaseException:
    """Map a nats-py (or asyncio) error onto our error hierarchy."""
    if isinstance(exc, nats.js.errors.APIError) and exc.err_code in (
        WRONG_LAST_SEQUENCE,
        WRONG_LAST_SEQUENCE_IN_FLIGHT,
    ):
        return WrongLastSequenceError("entity changed concurrently")
    if isinstance(exc, nats.js.errors.KeyWrongLastSequenceError):
        return KeyExistsError("key already exists")
    if isinstance(exc, nats.js.errors.APIError) and exc.err_code:
        return UnavailableError(
            f"NATS request failed: {type(exc).__name__} {exc.err_code}: {exc.description}"
        )
    if isinstance(exc, nats.errors.Error | asyncio.TimeoutError | OSError):
        return UnavailableError(f"NATS request failed: {type(exc).__name__}")
    return exc


class NatsBridge(BucketOps):
    """Coarse Trio API over one nats-py connection. Open with ``open_nats_bridge``."""

    def __init__(self, portal: Portal, settings: NatsSettings) -> None:
        self._portal = portal
        self._settings = settings
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self.stats = BridgeStats()
        self._connected = False
        self._closing = False
        # Handles are cached on the loop thread: js.key_value() costs a round trip.
        self._kv_handles: dict[str, Any] = {}
        self._obj_handles: dict[str, Any] = {}
        # Whether the event stream takes atomic batches (set by the storage
        # bootstrap: nats-server 2.12+ with ``allow_atomic`` on the stream).
        self.atomic_batches = False

    # --- plumbing ---------------------------------------------------------
    @property
    def connected(self) -> bool:
        """True while the client holds a live connection to a NATS server."""
        return self._connected and self._nc is not None and self._nc.is_connected

    @property
    def js(self) -> JetStreamContext:
        assert self._js is not None, "bridge is not connected"
        return self._js

    @property
    def nc(self) -> NatsClient:
        assert self._nc is not None, "bridge is not connected"
        return self._nc

    async def call(self, factory: Callable[[], Awaitable[T]]) -> T:
        """Run a nats-py coroutine on the loop thread, translating its errors."""
        try:
            return await self._portal.run(factory)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise translate(exc) from exc

    def _set_connected(self, up: bool) -> None:
        self._connected = up

    def _is_closing(self) -> bool:
        return self._closing

    async def _connect(self) -> None:
        s = self._settings
        kwargs = connect_options(
            s, ConnectionEvents(self.stats, self._set_connected, self._is_closing)
        )

        async def connect() -> NatsClient:
            # nats-py retries the initial connect forever with reconnects on;
            # bound it so an unreachable server is a clear startup error.
            return await asyncio.wait_for(nats.connect(**kwargs), timeout=s.connect_timeout * 2 + 1)

        try:
            self._nc = await self._portal.run(connect)
        except (TimeoutError, nats.errors.Error, OSError) as exc:
            raise StartupError(
                f"cannot connect to NATS at {redact_url(s.url)}: {type(exc).__name__}"
            ) from exc
        self._js = self._nc.jetstream(timeout=s.request_timeout)
        self._connected = True

    async def _close(self) -> None:
        self._closing = True
        nc = self._nc
        if nc is not None and not nc.is_closed:
            with trio.move_on_after(3) as scope:
                scope.shield = True
                try:
                    await self._portal.run(nc.close)
                except (TimeoutError, nats.errors.Error, OSError, trio.BrokenResourceError):
                    # Closing while reconnecting: nats-py may cancel its own close.
                    log.debug("error while closing NATS connection", exc_info=True)
        self._portal.close()

    # --- JetStream publish -----------------------------------------------
    async def publish(
        self,
        subject: str,
        data: bytes,
        *,
        msg_id: str | None = None,
        headers: Mapping[str, str] | None = None,
        expect_last_seq: int | None = None,
        expect_subject: str | None = None,
        ttl_seconds: int | None = None,
    ) -> int:
        """Publish to JetStream and wait for the ack; return the stream sequence.

        ``expect_last_seq`` with ``expect_subject`` (may be a wildcard) makes the
        append conditional: ``WrongLastSequenceError`` if anything newer exists.
        """
        hdrs: dict[str, str] = dict(headers or {})
        if msg_id is not None:
            hdrs["Nats-Msg-Id"] = msg_id
        if expect_last_seq is not None:
            hdrs["Nats-Expected-Last-Subject-Sequence"] = str(expect_last_seq)
            if expect_subject is not None:
                hdrs["Nats-Expected-Last-Subject-Sequence-Subject"] = expect_subject
        js = self.js

        async def once() -> int:
            ack = await self.call(
                lambda: js.publish(subject, data, headers=hdrs or None, msg_ttl=ttl_seconds)
            )
            return int(ack.seq)

        return await self.stats.timed_publish(lambda: until_a_stream_answers(once))

    async def publish_batch(
        self,
        messages: Sequence[tuple[str, bytes]],
        *,
        expect_last_seq: int | None = None,
        expect_subject: str | None = None,
    ) -> list[int]:
        """Publish ``messages`` as one atomic batch: all are stored, or none.

        JetStream atomic batch publish (nats-server 2.12+, the stream needs
        ``allow_atomic``): every message carries the batch id and its place,
        the last one commits and is the only one answered. The condition
        (``expect_*``, as in ``publish``) is checked on the first message;
        if it fails nothing is stored. Returns the stream sequences, which
        are contiguous because the batch is stored in one step.
        """
        if not 1 <= len(messages) <= MAX_ATOMIC_BATCH:
            raise ValueError(f"an atomic batch holds 1 to {MAX_ATOMIC_BATCH} messages")
        nc, timeout = self.nc, self._settings.request_timeout

        async def once() -> list[int]:
            return await self.call(lambda: send_batch(nc, messages, expect, timeout))

        expect: dict[str, str] = {}
        if expect_last_seq is not None:
            expect["Nats-Expected-Last-Subject-Sequence"] = str(expect_last_seq)
            if expect_subject is not None:
                expect["Nats-Expected-Last-Subject-Sequence-Subject"] = expect_subject
        return await self.stats.timed_publish(lambda: until_a_stream_answers(once))

    async def publish_core(self, subject: str, data: bytes, flush: bool = False) -> None:
        """Fire a core NATS message (not stored): typing indicators and the like.

        ``flush`` waits until the server has it (one round trip), so anything
        published after this returns, from any connection, comes after it.
        """
        nc = self.nc

        async def publish() -> None:
            await nc.publish(subject, data)
            if flush:
                await nc.flush()

        await self.call(publish)

    # --- stream reads -------------------------------------------------------
    async def last_seq(self, stream: str, subject_filter: str) -> int:
        """Sequence of the newest message matching ``subject_filter`` (0 if none)."""
        js = self.js

        async def get() -> int:
            try:
                msg = await js.get_last_msg(stream, subject_filter)
            except nats.js.errors.NotFoundError:
                return 0
            return int(msg.seq or 0)

        return await self.call(get)

    async def stream_last_seq(self, stream: str) -> int:
        """Last sequence of the whole stream (0 when empty)."""
        js = self.js
        info = await self.call(lambda: js.stream_info(stream))
        return int(info.state.last_seq)

    async def read_range(
        self, stream: str, subject_filter: str, after_seq: int, upto_seq: int, batch: int = 512
    ) -> AsyncIterator[list[StoredMsg]]:
        """Yield batches of messages in ``(after_seq, upto_seq]`` matching the filter.

        Stops at ``upto_seq`` or when the consumer reports nothing pending.
        """
        if upto_seq <= after_seq:
            return
        async with self.ordered_reader(stream, subject_filter, after_seq + 1) as next_batch:
            while True:
                msgs = await next_batch(batch)
                done = False
                out = []
                for m in msgs:
                    if m.seq > upto_seq:
                        done = True
                        break
                    out.append(m)
                    done = m.seq >= upto_seq or m.pending == 0
                if out:
                    yield out
                if done:
                    return

    async def get_msgs(
        self, stream: str, seqs: Sequence[int], in_flight: int = 128
    ) -> list[StoredMsg | None]:
        """The messages stored at ``seqs``, in that order (None: erased or never stored).

        Direct look-ups by sequence, ``in_flight`` at a time: for scattered
        sequences (an old page and the later events that changed it) where
        an ordered consumer would have to read everything in between.
        """
        js = self.js

        async def one(seq: int) -> StoredMsg | None:
            try:
                m = await js.get_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                return None
            return StoredMsg(m.subject or "", int(m.seq or seq), m.data or b"", m.headers or {})

        async def chunk(part: Sequence[int]) -> list[StoredMsg | None]:
            return list(await asyncio.gather(*(one(seq) for seq in part)))

        out: list[StoredMsg | None] = []
        for i in range(0, len(seqs), in_flight):
            part = seqs[i : i + in_flight]
            out.extend(await self.call(lambda part=part: chunk(part)))  # type: ignore[misc]
        return out

    @asynccontextmanager
    async def ordered_reader(
        self, stream: str, subject_filter: str, start_seq: int, max_buffer: int = 4096
    ) -> AsyncIterator[Callable[[int], Awaitable[list[StoredMsg]]]]:
        """Open an ordered reader; yield ``next_batch(n)`` that waits for >= 1 message.

        Pull-style end to end: Trio asks for the next batch and the reader
        asks the server for no more than ``max_buffer`` messages ahead, so a
        slow reader slows the reading instead of losing messages.
        """
        from chatto.bus.reader import open_reader  # local: keeps this module small

        async with open_reader(self, stream, subject_filter, start_seq, max_buffer) as nb:
            yield nb

    async def erase_msg(self, stream: str, seq: int) -> None:
        """Delete one stored message, overwriting its bytes on disk (secure erase)."""
        js = self.js

        async def erase() -> None:
            try:
                await js.delete_msg(stream, seq)
            except nats.js.errors.NotFoundError:
                return

        await self.call(erase)

    async def account_info(self) -> None:
        """JetStream account info; in a cluster only a meta leader answers it.

        Without a quorum of nodes there is no meta leader, so this fails
        (``UnavailableError``) while a stale stream leader may still answer
        stream info: readiness uses both.
        """
        js = self.js
        await self.call(js.account_info)

    async def ping(self) -> None:
        """Round trip to the server (flush); raises UnavailableError if down."""
        nc = self.nc
        await self.call(lambda: nc.flush(timeout=2))


@asynccontextmanager
async def open_nats_bridge(settings: NatsSettings) -> AsyncIterator[NatsBridge]:
    """Start the asyncio loop thread, connect, yield the bridge; close on exit."""
    thread = LoopThread()
    thread.start()
    portal = Portal(thread.loop, trio.lowlevel.current_trio_token())
    bridge = NatsBridge(portal, settings)
    try:
        await bridge._connect()
        yield bridge
    finally:
        with trio.CancelScope(shield=True):
            await bridge._close()
            await thread.stop()
