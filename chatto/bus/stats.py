"""What the NATS bridge counts: connection events, client errors, publishes.

Read by ``/readyz``, benchmarks and ``/metrics`` (``chatto.metrics``). The
publish latency is a ``prometheus_client`` histogram that belongs to no
registry: the metrics collector re-exports it, so its buckets are the
library's, while the bridge stays usable without ``/metrics``.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import attrs
import trio
from prometheus_client import Histogram

from chatto.errors import StaleWriteError, UnavailableError

T = TypeVar("T")

# From a local loopback ack (~0.3 ms) to a cluster election (seconds).
PUBLISH_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)
OUTCOMES = ("ok", "conflict", "unavailable", "error", "cancelled")


def _publish_histogram() -> Histogram:
    return Histogram(
        "chatto_nats_publish_seconds",
        "JetStream publish (or atomic batch) until acknowledged, retries included.",
        buckets=PUBLISH_BUCKETS,
        registry=None,
    )


@attrs.define
class BridgeStats:
    """Counters exposed on /readyz, /metrics and in benchmarks."""

    disconnects: int = 0
    reconnects: int = 0
    client_errors: dict[str, int] = attrs.Factory(dict)  # nats-py async errors by type
    # Publishes by outcome: ok, conflict (expected sequence), unavailable, error, cancelled.
    publishes: dict[str, int] = attrs.Factory(lambda: dict.fromkeys(OUTCOMES, 0))
    publish_seconds: Histogram = attrs.Factory(_publish_histogram)

    async def timed_publish(self, publish: Callable[[], Awaitable[T]]) -> T:
        """Run one publish, recording its latency and outcome."""
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await publish()
            outcome = "ok"
            return result
        except StaleWriteError:
            outcome = "conflict"  # optimistic concurrency at work, not a fault
            raise
        except UnavailableError:
            outcome = "unavailable"
            raise
        except trio.Cancelled:
            outcome = "cancelled"
            raise
        finally:
            self.publishes[outcome] += 1
            self.publish_seconds.observe(time.perf_counter() - started)
