"""Prometheus metrics for ``/metrics``, with the official ``prometheus_client``.

Two kinds. Events are counted as they happen by ``Metrics``' instruments:
HTTP requests (route template, method, status; latency histogram), GraphQL
operations (transport, type, root field, outcome), open WebSockets and
subscriptions, frames delivered live, slow-subscriber closes, WebSocket
closes by code. State is read at scrape time from the services' own
statistics by ``StatsCollector``: NATS (connection, publishes by outcome
and their latency histogram, client errors), projector position, stream
head and lag, actors, hub, rate-limit refusals by limit, bcrypt queue,
snapshot and checkpoint write durations, credential watch; plus the
library's process collector (CPU, memory, file descriptors).

Each ``Metrics`` has its own registry, never the library's global one: tests
run several servers in one process, and every process exposes its own
numbers. Labels are bounded and carry no personal data: route templates
(never raw paths: an attachment path names a room), operation types and
root field names from the schema (only for valid documents), close codes,
limit names, outcomes. Never a user id, email, room name or operation name
chosen by a client.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    Metric,
    SummaryMetricFamily,
)
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from actors.snapshot import WriteTimes
from chatto.errors import ChattoError
from chatto.http.ws_frames import WriteStats

if TYPE_CHECKING:
    from chatto.gql.execute import Operation
    from chatto.services import Services

# Reading the stream head is one NATS request; a scrape must not hang on it.
HEAD_TIMEOUT = 1.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


class Metrics:
    """One process's registry and the instruments request handlers update."""

    def __init__(self) -> None:
        r = self.registry = CollectorRegistry()
        self.http_requests = Counter(
            "chatto_http_requests",
            "HTTP requests answered, by route template, method and status.",
            ["route", "method", "status"],
            registry=r,
        )
        self.http_seconds = Histogram(
            "chatto_http_request_duration_seconds",
            "HTTP request duration until the last body byte was sent, by route template.",
            ["route"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.graphql_operations = Counter(
            "chatto_graphql_operations",
            "GraphQL operations by transport, type, root field and outcome"
            " (ok, error: errors in the result, invalid: refused before execution).",
            ["transport", "type", "field", "outcome"],
            registry=r,
        )
        self.websockets = Gauge(
            "chatto_websockets_open",
            "Open GraphQL WebSockets by subprotocol.",
            ["protocol"],
            registry=r,
        )
        self.websocket_closes = Counter(
            "chatto_websocket_closes",
            "WebSockets closed by the server, by subprotocol and close code.",
            ["protocol", "code"],
            registry=r,
        )
        self.subscriptions = Gauge(
            "chatto_subscriptions_active",
            "Running GraphQL subscriptions by subprotocol.",
            ["protocol"],
            registry=r,
        )
        self.live_frames = Counter(
            "chatto_live_deliveries", "Subscription results sent to WebSockets.", registry=r
        )
        self.slow_closes = Counter(
            "chatto_slow_subscriber_closes",
            "WebSockets closed (1013) because a subscriber fell behind its live feed.",
            registry=r,
        )
        ProcessCollector(registry=r)
        # Frames against socket writes on Chatto's own WebSocket path (ws_server.py).
        self.ws_writes = WriteStats()
        self.head: int | None = None

    def attach(self, services: Services, checkpoint_times: WriteTimes) -> None:
        """Read the running services' statistics at every scrape."""
        self.registry.register(StatsCollector(services, checkpoint_times, self))

    def graphql(self, transport: str, op: Operation | None, outcome: str) -> None:
        """Count one operation (``op`` None: refused before it was parsed)."""
        if op is None or op.errors:
            kind, field = (op.kind if op else "unknown"), "(invalid)"
        else:
            # Valid documents only: their root fields are the schema's, a
            # bounded set; an invalid one could carry any name at all.
            field = op.fields[0] if len(op.fields) == 1 else "(several)"
            kind = op.kind
        self.graphql_operations.labels(transport, kind, field, outcome).inc()

    async def render(self, services: Services) -> bytes:
        """The text exposition, with the stream head read fresh (bounded)."""
        self.head = None
        with trio.move_on_after(HEAD_TIMEOUT):
            try:
                self.head = await services.store.head()
            except ChattoError:
                self.head = None  # NATS unreachable: the head is simply not reported
        return generate_latest(self.registry)


def _counter(name: str, doc: str, value: float, **labels: str) -> CounterMetricFamily:
    family = CounterMetricFamily(name, doc, labels=list(labels))
    family.add_metric(list(labels.values()), value)
    return family


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, value=value)


def _write_times(name: str, what: str, times: WriteTimes) -> Iterator[Metric]:
    summary = SummaryMetricFamily(f"{name}_seconds", f"Duration of {what} writes.")
    summary.add_metric([], times.written + times.failed, times.seconds)
    yield summary
    yield _counter(f"{name}_failures", f"{what.capitalize()} writes that failed.", times.failed)


class StatsCollector(Collector):
    """State read from the services at scrape time (no copy kept in between)."""

    def __init__(self, services: Services, checkpoint_times: WriteTimes, metrics: Metrics) -> None:
        self._s = services
        self._checkpoints = checkpoint_times
        self._metrics = metrics

    def collect(self) -> Iterator[Metric]:
        yield from self._nats()
        yield from self._projector()
        yield from self._actors()
        yield from self._limits()
        yield from self._cache()
        s = self._s
        yield from _write_times(
            "chatto_snapshot_write", "projector snapshot", s.projector.write_times
        )
        yield from _write_times("chatto_checkpoint_write", "room checkpoint", self._checkpoints)
        w = self._metrics.ws_writes
        yield _counter(
            "chatto_websocket_frames_queued", "Frames queued on Chatto's WebSocket path.", w.frames
        )
        yield _counter(
            "chatto_websocket_writes",
            "Socket writes on Chatto's WebSocket path (several frames each when coalesced).",
            w.writes,
        )
        watch = s.credentials.statistics()
        yield _gauge("chatto_credentials_tracked", "Credentials of open WebSockets.", watch.tracked)
        yield _counter("chatto_credentials_ended", "Credentials ended while in use.", watch.ended)

    def _nats(self) -> Iterator[Metric]:
        bridge = self._s.bridge
        stats = bridge.stats
        yield _gauge("chatto_nats_connected", "1 while connected to NATS.", int(bridge.connected))
        yield _counter("chatto_nats_disconnects", "Connections to NATS lost.", stats.disconnects)
        yield _counter("chatto_nats_reconnects", "Reconnections to NATS.", stats.reconnects)
        errors = CounterMetricFamily(
            "chatto_nats_client_errors", "nats-py asynchronous errors by type.", labels=["type"]
        )
        for kind, count in sorted(stats.client_errors.items()):
            errors.add_metric([kind], count)
        yield errors
        publishes = CounterMetricFamily(
            "chatto_nats_publishes",
            "JetStream publishes by outcome (conflict: another writer was first).",
            labels=["outcome"],
        )
        for outcome, count in stats.publishes.items():
            publishes.add_metric([outcome], count)
        yield publishes
        yield from stats.publish_seconds.collect()

    def _projector(self) -> Iterator[Metric]:
        p, head = self._s.projector, self._metrics.head
        yield _gauge("chatto_projector_position", "Last event sequence projected.", p.position)
        yield _gauge(
            "chatto_projector_caught_up", "1 once the start-up replay is done.", int(p.caught_up)
        )
        if head is not None:
            yield _gauge("chatto_stream_head", "Last sequence stored in the event stream.", head)
            lag = max(0, head - p.position)
            yield _gauge("chatto_projector_lag_events", "Events stored, not yet projected.", lag)

    def _actors(self) -> Iterator[Metric]:
        actors, hub = self._s.actors, self._s.hub
        stats = actors.stats
        yield _gauge("chatto_actors_live", "Running (not passivated) actors.", actors.live_count())
        yield _counter("chatto_actors_started", "Actors started.", stats.started)
        yield _counter("chatto_actors_passivated", "Actors retired while idle.", stats.passivated)
        yield _counter("chatto_actors_crashed", "Actors that crashed.", stats.crashed)
        yield _counter("chatto_actor_commands", "Commands handled by actors.", stats.handled)
        yield _gauge(
            "chatto_hub_subscribers", "Live subscribers in the hub.", hub.subscriber_count()
        )
        yield _counter("chatto_hub_published", "Events published to the live hub.", hub.published)
        yield _counter("chatto_hub_delivered", "Hub deliveries to subscribers.", hub.delivered)
        yield _counter(
            "chatto_hub_fast_delivered",
            "Of the deliveries: written by a subscriber's fast lane, its task not woken.",
            hub.fast_delivered,
        )
        yield _counter(
            "chatto_hub_dropped_subscribers",
            "Subscribers dropped for falling behind their bounded feed.",
            hub.dropped,
        )

    def _cache(self) -> Iterator[Metric]:
        cache = self._s.messaging.rooms.cache_statistics()
        yield _gauge("chatto_hot_rooms", "Rooms holding a hot window of views.", cache["hot_rooms"])
        yield _gauge("chatto_hot_rooms_max", "The [cache] hot_rooms bound.", cache["max_hot_rooms"])
        yield _gauge("chatto_hot_messages", "Message views in hot windows.", cache["hot_messages"])
        yield _gauge(
            "chatto_hot_messages_max", "The [cache] hot_messages bound.", cache["max_hot_messages"]
        )
        yield _counter(
            "chatto_hot_evicted", "Message views that left a hot window.", cache["hot_evicted"]
        )
        yield _gauge(
            "chatto_index_rooms", "Rooms whose history index is resident.", cache["index_rooms"]
        )
        yield _gauge(
            "chatto_index_rooms_max",
            "The [cache] index_rooms bound (0: no snapshot store, none evicted).",
            cache["max_index_rooms"],
        )
        yield _gauge(
            "chatto_index_bytes",
            "Estimated bytes of the resident history indexes.",
            cache["index_bytes"],
        )
        yield _gauge(
            "chatto_index_bytes_max",
            "The [cache] index_mb bound in bytes (0: no snapshot store, none evicted).",
            cache["max_index_bytes"],
        )
        dirty = cache["index_dirty"]
        yield _gauge("chatto_index_dirty", "Resident indexes changed since stored.", dirty)
        for name in ("loaded", "evicted", "written", "deleted", "swept"):
            help_text = f"Room history index objects {name}."
            yield _counter(f"chatto_index_{name}", help_text, cache[f"index_{name}"])
        yield _gauge(
            "chatto_cold_pages", "History pages read from the stream, cached.", cache["pages"]
        )
        yield _gauge("chatto_cold_pages_max", "The [cache] cold_pages bound.", cache["max_pages"])
        yield _gauge("chatto_cold_views", "Message views in cached cold pages.", cache["views"])
        for name in ("hits", "misses", "evicted", "forgotten"):
            what = {"evicted": "pushed out by newer pages", "forgotten": "dropped by a change"}
            yield _counter(
                f"chatto_cold_pages_{name}", f"Cold page cache {what.get(name, name)}.", cache[name]
            )

    def _limits(self) -> Iterator[Metric]:
        refusals = CounterMetricFamily(
            "chatto_rate_limit_refusals", "Requests refused by a rate limit.", labels=["limit"]
        )
        for name, count in sorted(self._s.limiter.refused_by.items()):
            refusals.add_metric([name], count)
        yield refusals
        hasher = self._s.accounts.hasher
        running, waiting = hasher.queue()
        yield _gauge("chatto_bcrypt_running", "bcrypt jobs on worker threads.", running)
        yield _gauge("chatto_bcrypt_queue_depth", "bcrypt jobs waiting for a thread.", waiting)
        yield _counter(
            "chatto_bcrypt_refusals",
            "Logins refused: too many waited for bcrypt.",
            hasher.stats.refused,
        )
