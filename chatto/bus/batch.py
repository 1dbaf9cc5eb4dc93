"""Publishing helpers that run on either side of the portal.

``send_batch`` is the loop-thread half of ``NatsBridge.publish_batch`` (an
atomic JetStream batch); ``until_a_stream_answers`` re-publishes, after a
back-off, a message no stream answered (nothing was stored, so trying again
is safe).
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TypeVar

import nats.errors
import nats.js.errors
import trio
from nats.aio.client import Client as NatsClient

from chatto.errors import UnavailableError

T = TypeVar("T")

# Back-off before re-publishing a message no stream answered (~1.5 s in all).
NO_STREAM_RETRY_DELAYS = (0.05, 0.1, 0.2, 0.4, 0.8)


async def until_a_stream_answers(once: Callable[[], Awaitable[T]]) -> T:
    """Run a publish; again after a back-off while no stream answered it.

    No stream took the message, so nothing was stored and trying again is
    safe: a stream created (or re-led) a moment ago may not be listening
    through every node's routes yet.
    """
    for delay in NO_STREAM_RETRY_DELAYS:
        try:
            return await once()
        except UnavailableError as exc:
            if not isinstance(exc.__cause__, nats.js.errors.NoStreamResponseError):
                raise
        await trio.sleep(delay)
    return await once()


async def send_batch(
    nc: NatsClient,
    messages: Sequence[tuple[str, bytes]],
    expect: Mapping[str, str],
    ack_wait: float,
) -> list[int]:
    """Loop-thread half of ``NatsBridge.publish_batch``."""
    batch_id = secrets.token_urlsafe(16)
    last = len(messages)
    for i, (subject, data) in enumerate(messages, 1):
        headers = {"Nats-Batch-Id": batch_id, "Nats-Batch-Sequence": str(i)}
        if i == 1:
            headers.update(expect)
        if i < last:
            # Unanswered: a message lost here makes the commit fail as
            # "incomplete" (nothing stored), so its error is not missed.
            await nc.publish(subject, data, headers=headers)
            continue
        headers["Nats-Batch-Commit"] = "1"
        try:
            reply = await nc.request(subject, data, headers=headers, timeout=ack_wait)
        except nats.errors.NoRespondersError:
            raise nats.js.errors.NoStreamResponseError from None
    doc = json.loads(reply.data)
    if "error" in doc:
        nats.js.errors.APIError.from_error(doc["error"])
    seq, count = int(doc["seq"]), int(doc.get("count", 0))
    if count != last:
        raise nats.js.errors.APIError(description=f"batch stored {count} of {last} messages")
    return list(range(seq - last + 1, seq + 1))
