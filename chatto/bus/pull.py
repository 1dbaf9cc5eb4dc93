"""A stream reader that cannot drop: an ordered pull consumer with credits.

nats-py's ordered *push* consumer drops messages once its pending limits are
passed (``SlowConsumerError``) and answers the server's flow control as
messages arrive rather than as they are consumed, so a reader slower than the
stream lost events (issue #23). This reader asks for messages itself:

- an ephemeral pull consumer (ack none, in memory, one replica), the shape
  nats.go's ordered consumer uses;
- at most one pull request outstanding, for no more messages than the buffer
  has room for, so the buffer is bounded by construction and nothing upstream
  of it can overflow: the server keeps what we have not asked for;
- every delivered message carries its consumer sequence, which the server
  numbers 1, 2, 3 ... for each delivery. A jump means a delivery was lost
  between the server and us; then (and when the consumer is gone, or no
  message or heartbeat arrived for a while) the reader deletes the consumer
  and makes a new one starting after the last message it accepted, so a
  reader never skips silently. Gaps in *stream* sequences are the server's
  own doing (other subjects, deleted or erased messages) and need nothing.

All methods run on the bridge's asyncio thread; Trio pulls batches through
the portal with ``take``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections import deque
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

    from chatto.bus.bridge import StoredMsg

log = logging.getLogger(__name__)

# The server sends an idle heartbeat this often while a pull request waits;
# three missed ones mean the request (or the node holding the consumer) is
# gone. On a cluster this is how a reader survives losing that node.
HEARTBEAT_SECONDS = 1.0
MISSED_HEARTBEATS = 3
# A waiting pull request is renewed this often (the server answers 408).
REQUEST_EXPIRES_SECONDS = 30.0
# The server deletes a consumer nobody pulled from for this long (a reader
# whose owner vanished without deleting it).
INACTIVE_THRESHOLD_SECONDS = 300.0
# One request asks for at most this many bytes (and at least two of the
# largest possible message, or a big message could never be fetched).
REQUEST_MAX_BYTES = 16 * 1024 * 1024
_RESET_BACKOFF = (0.05, 0.1, 0.25, 0.5, 1.0, 2.0)


class ReaderStats:
    """Counters of one reader, for tests and logs."""

    def __init__(self) -> None:
        self.requests = 0
        self.delivered = 0
        self.max_buffered = 0
        self.resets = 0
        self.reset_reasons: list[str] = []


class PullReader:
    """Loop-thread state of one ordered pull reader. Use ``open``/``take``/``close``.

    ``last_per_subject`` reads the newest message of each subject (KV keys);
    ``headers_only`` leaves the payloads on the server.
    """

    def __init__(
        self,
        nc: NatsClient,
        js: JetStreamContext,
        stream: str,
        subject_filter: str,
        start_seq: int,
        capacity: int,
        *,
        last_per_subject: bool = False,
        headers_only: bool = False,
    ) -> None:
        self._nc = nc
        self._js = js
        self._stream = stream
        self._filter = subject_filter
        self._capacity = max(capacity, 2)
        self._batch = max(self._capacity // 2, 1)
        self._max_bytes = max(REQUEST_MAX_BYTES, 2 * int(nc.max_payload))
        self._last_per_subject = last_per_subject
        self._headers_only = headers_only
        self._next_seq = max(start_seq, 1)  # stream sequence we want next
        self._buffer: deque[StoredMsg] = deque()
        self._wake = asyncio.Event()
        self._inbox = nc.new_inbox()
        self._sub: Any = None
        self._consumer = ""
        self._expected_cseq = 1
        self._request = 0  # id of the outstanding (or last) pull request
        self._outstanding = 0  # messages the outstanding request may still deliver
        self._last_activity = 0.0
        self._reset_reason = ""
        self._failures = 0
        self.pending_at_start = 0  # matching messages when the consumer was made
        self.stats = ReaderStats()

    # --- life cycle ---------------------------------------------------------
    async def open(self) -> None:
        """Subscribe the inbox and create the consumer (errors propagate)."""
        self._sub = await self._nc.subscribe(
            self._inbox + ".*",
            cb=self._on_msg,
            # Credits bound what can arrive; these limits are only a backstop
            # (a drop past them shows as a consumer-sequence gap and a reset).
            pending_msgs_limit=self._capacity + 1024,
            pending_bytes_limit=4 * self._max_bytes,
        )
        await self._create_consumer()

    async def close(self) -> None:
        """Unsubscribe and delete the consumer (best effort)."""
        with contextlib.suppress(nats.errors.Error, OSError):
            if self._sub is not None:
                await self._sub.unsubscribe()
        await self._delete_consumer()

    async def take(self, n: int) -> list[StoredMsg]:
        """Wait for at least one message; return up to ``n`` in stream order."""
        while True:
            self._wake.clear()
            if self._reset_reason and not self._buffer:
                await self._reset()
            if self._buffer:
                out = [self._buffer.popleft() for _ in range(min(n, len(self._buffer)))]
                await self._maybe_pull()
                return out
            await self._maybe_pull()
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._wake.wait(), HEARTBEAT_SECONDS)
            self._check_alive()

    def current_position(self) -> tuple[str, str, int]:
        """(consumer name, inbox prefix, last consumer sequence): for tests and logs."""
        return self._consumer, self._inbox, self._expected_cseq - 1

    # --- requests -----------------------------------------------------------
    async def _create_consumer(self) -> None:
        name = "rd_" + secrets.token_hex(8)
        if self._last_per_subject:
            policy, start = DeliverPolicy.LAST_PER_SUBJECT, None
        else:
            policy, start = DeliverPolicy.BY_START_SEQUENCE, self._next_seq
        info = await self._js.add_consumer(
            self._stream,
            ConsumerConfig(
                name=name,
                filter_subject=self._filter,
                deliver_policy=policy,
                opt_start_seq=start,
                ack_policy=AckPolicy.NONE,
                mem_storage=True,
                num_replicas=1,
                inactive_threshold=INACTIVE_THRESHOLD_SECONDS,
                headers_only=self._headers_only or None,
            ),
        )
        self.pending_at_start = int(info.num_pending or 0)
        self._consumer = name
        self._expected_cseq = 1
        self._outstanding = 0
        self._last_activity = asyncio.get_running_loop().time()

    async def _delete_consumer(self) -> None:
        # Asked, not awaited: a reader closes on every entity load, and a
        # delete that is lost is done by the server after its inactivity.
        name, self._consumer = self._consumer, ""
        if not name:
            return
        with contextlib.suppress(nats.errors.Error, OSError):
            await self._nc.publish(f"$JS.API.CONSUMER.DELETE.{self._stream}.{name}")

    async def _maybe_pull(self) -> None:
        """Ask for more once the last request is done and half the buffer is free."""
        if self._outstanding or self._reset_reason or not self._consumer:
            return
        room = self._capacity - len(self._buffer)
        if room < self._batch:
            return
        self._request += 1
        request = {
            "batch": room,
            "max_bytes": self._max_bytes,
            "expires": int(REQUEST_EXPIRES_SECONDS * 1e9),
            "idle_heartbeat": int(HEARTBEAT_SECONDS * 1e9),
        }
        self._outstanding = room
        self._last_activity = asyncio.get_running_loop().time()
        self.stats.requests += 1
        try:
            await self._nc.publish(
                f"$JS.API.CONSUMER.MSG.NEXT.{self._stream}.{self._consumer}",
                json.dumps(request).encode(),
                reply=f"{self._inbox}.{self._request}",
            )
        except (nats.errors.Error, OSError) as exc:
            self._mark_reset(f"pull request failed: {type(exc).__name__}")

    def _check_alive(self) -> None:
        if not self._outstanding or self._reset_reason:
            return
        quiet = asyncio.get_running_loop().time() - self._last_activity
        if quiet > HEARTBEAT_SECONDS * MISSED_HEARTBEATS:
            self._mark_reset(f"no message or heartbeat for {quiet:.1f} s")

    def _mark_reset(self, reason: str) -> None:
        if not self._reset_reason:
            self._reset_reason = reason
        self._outstanding = 0
        self._wake.set()

    async def _reset(self) -> None:
        """Start a new consumer after the last accepted message (nothing skipped)."""
        reason = self._reset_reason
        self.stats.resets += 1
        self.stats.reset_reasons.append(reason)
        log.warning(
            "stream reader %s on %s (%s) restarts at sequence %d: %s",
            self._consumer or "-",
            self._stream,
            self._filter,
            self._next_seq,
            reason,
        )
        await self._delete_consumer()
        while True:
            try:
                await self._create_consumer()
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                delay = _RESET_BACKOFF[min(self._failures, len(_RESET_BACKOFF) - 1)]
                self._failures += 1
                log.warning(
                    "stream reader on %s (%s) cannot re-create its consumer: %s; again in %.2f s",
                    self._stream,
                    self._filter,
                    type(exc).__name__,
                    delay,
                )
                await asyncio.sleep(delay)
                continue
            self._failures = 0
            self._reset_reason = ""
            return

    # --- deliveries (nats-py calls this for every message on the inbox) -----
    async def _on_msg(self, msg: Any) -> None:
        headers = msg.headers
        status = headers.get("Status") if headers else None
        if status:
            self._on_status(msg.subject, status, headers.get("Description", ""))
            return
        if self._reset_reason:
            return  # everything after a gap comes again from the new consumer
        try:
            meta = msg.metadata
        except nats.errors.Error:
            log.error("stream reader on %s got a message without metadata", self._stream)
            return
        if meta.consumer != self._consumer:
            return  # a late delivery to a consumer this reader replaced
        self._last_activity = asyncio.get_running_loop().time()
        cseq = int(meta.sequence.consumer)
        if cseq != self._expected_cseq:
            log.error(
                "stream reader on %s (%s): delivery %d missing (got %d); re-reading from %d",
                self._stream,
                self._filter,
                self._expected_cseq,
                cseq,
                self._next_seq,
            )
            self._mark_reset(f"delivery gap {self._expected_cseq} -> {cseq}")
            return
        from chatto.bus.bridge import StoredMsg

        seq = int(meta.sequence.stream)
        self._expected_cseq = cseq + 1
        if self._outstanding:
            self._outstanding -= 1
        self._wake.set()
        if seq < self._next_seq:
            # A re-made last-per-subject consumer starts over (in stream
            # order): what was accepted before is skipped.
            return
        self._next_seq = seq + 1
        self._buffer.append(
            StoredMsg(
                subject=msg.subject,
                seq=seq,
                data=bytes(msg.data),
                headers=dict(headers or {}),
                pending=int(meta.num_pending),
            )
        )
        self.stats.delivered += 1
        self.stats.max_buffered = max(self.stats.max_buffered, len(self._buffer))

    def _on_status(self, subject: str, status: str, description: str) -> None:
        if subject != f"{self._inbox}.{self._request}":
            return  # about a request this reader no longer waits for
        self._last_activity = asyncio.get_running_loop().time()
        if status == "100":
            return  # idle heartbeat: the request is alive
        if status in ("404", "408"):
            self._outstanding = 0  # no (more) messages for now, or expired
        elif status == "409" and "Consumer Deleted" not in description:
            if "MaxBytes" in description:
                log.error("stream reader on %s: %s", self._stream, description)
            self._outstanding = 0  # e.g. leadership change, max waiting: ask again
        else:
            self._mark_reset(f"{status} {description}".strip())
        self._wake.set()
