"""Live fan-out: route each event only to the subscribers of its topic.

Topics are entity keys (``server``, ``room.<id>``, ``user.<id>``). A
subscriber listens to a set of topics that can change while it is
connected (joining a room adds a topic at once). Publishing costs
O(subscribers of that topic), not O(connections). Each subscriber has a
bounded channel; one that falls behind is dropped (its channel closed and
``dropped`` set) rather than slowing the publisher.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import trio

log = logging.getLogger(__name__)

# At most this many deliveries go through fast lanes between two refills
# (the projector refills before each batch it publishes; a few microseconds
# each); the rest are queued as usual, so a batch of events to a huge room
# does not hold the loop for long.
FAST_PER_BATCH = 1024


class Tick:
    """The item ``Hub.tick`` offers: "time has passed" for readers that wait without a deadline."""


TICK = Tick()


class Subscriber:
    """One live consumer: iterate ``receive`` for items; check ``dropped`` at the end."""

    def __init__(self, hub: Hub, capacity: int) -> None:
        self._hub = hub
        self.send, self.receive = trio.open_memory_channel[Any](capacity)
        self.topics: set[str] = set()
        self.dropped = False
        self.drained = 0  # items its reader has taken without waiting (a backlog)
        # Set by a reader that does periodic work (presence refresh) and so
        # wants ``TICK`` now and then instead of a deadline on every wait: a
        # cancel scope per received item cost ~a fifth of a live frame.
        self.wants_ticks = False
        # The fast lane: returns True when it delivered the item itself,
        # False to have it queued as usual (see the module's docstring).
        self.fast: Callable[[Any], bool] | None = None
        # Set by the reader while it waits on an empty channel, with
        # everything it received before fully handled.
        self.parked = False

    def add_topic(self, topic: str) -> None:
        """Start receiving ``topic`` from the next published item on."""
        self._hub._add(self, topic)

    def remove_topic(self, topic: str) -> None:
        """Stop receiving ``topic`` at once."""
        self._hub._remove(self, topic)

    def offer(self, item: Any, fast: bool = True) -> bool:
        """Deliver without blocking; drop this subscriber if it is full.

        Returns True when the fast lane delivered the item (``fast``: it may).
        """
        if self.dropped:
            return False
        if fast and self.parked and self.fast is not None:
            try:
                if self.fast(item):
                    return True
            except Exception:
                # A bug in a lane must not stop the publisher (the projector):
                # this subscriber goes on without one.
                log.exception("live fast lane failed; queueing instead")
                self.fast = None
        try:
            self.send.send_nowait(item)
        except trio.WouldBlock:
            self.dropped = True
            self._hub.dropped += 1
            self.send.close()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            # Its reader went away, or its owner closed it (a credential that
            # ended closes its live stream's channel): not a slow consumer.
            self.dropped = True
        else:
            self.parked = False  # it has an item to handle: later ones queue behind
        return False


class Hub:
    """Topic-indexed registry of live subscribers."""

    def __init__(self) -> None:
        self._by_topic: dict[str, set[Subscriber]] = {}
        self.published = 0
        self.delivered = 0
        self.dropped = 0
        self.fast_delivered = 0  # of ``delivered``: by a fast lane
        self.fast_budget = FAST_PER_BATCH

    def refill_fast(self) -> None:
        """Allow ``FAST_PER_BATCH`` more fast-lane deliveries (before a batch is published)."""
        self.fast_budget = FAST_PER_BATCH

    @contextmanager
    def subscribe(self, topics: Iterable[str], capacity: int = 256) -> Iterator[Subscriber]:
        """Register a subscriber for the block's duration."""
        sub = Subscriber(self, capacity)
        for t in topics:
            self._add(sub, t)
        try:
            yield sub
        finally:
            for t in list(sub.topics):
                self._remove(sub, t)
            sub.send.close()

    def publish(self, topic: str, item: Any) -> int:
        """Offer ``item`` to every subscriber of ``topic``; return how many got it."""
        self.published += 1
        subs = self._by_topic.get(topic)
        if not subs:
            return 0
        n = 0
        for sub in list(subs):
            if sub.offer(item, self.fast_budget > 0):
                self.fast_budget -= 1
                self.fast_delivered += 1
            if not sub.dropped:
                n += 1
        self.delivered += n
        return n

    def tick(self) -> int:
        """Offer ``TICK`` to every idle subscriber that wants ticks; return how many.

        A subscriber with items queued is awake anyway and gets none (so a
        tick never takes the last free place in a nearly full channel).
        """
        idle = {
            s
            for subs in self._by_topic.values()
            for s in subs
            if s.wants_ticks and s.send.statistics().current_buffer_used == 0
        }
        for sub in idle:
            sub.offer(TICK)
        return len(idle)

    def subscriber_count(self, topic: str | None = None) -> int:
        if topic is None:
            return len({s for subs in self._by_topic.values() for s in subs})
        return len(self._by_topic.get(topic, ()))

    def _add(self, sub: Subscriber, topic: str) -> None:
        sub.topics.add(topic)
        self._by_topic.setdefault(topic, set()).add(sub)

    def _remove(self, sub: Subscriber, topic: str) -> None:
        sub.topics.discard(topic)
        subs = self._by_topic.get(topic)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._by_topic[topic]
