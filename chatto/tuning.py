"""Process-wide runtime tuning applied once the server has started.

The bridge settles calls in bursts (a hundred publishes complete together),
which pushes CPython's generation-0 allocation counter past its default
threshold (700) on every burst; each burst then pays minor collections and,
every few hundred, a full collection of the whole heap (~11 ms measured)
that finds nothing to free. Freezing the start-up heap and raising the
thresholds removes those pauses (bench_bridge: p99 13.7 -> 4.2 ms with 100
publishes in flight). Reference cycles are still collected, just less often.
"""

from __future__ import annotations

import gc
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager

GEN0_THRESHOLD = 20_000
GEN1_THRESHOLD = 50
GEN2_THRESHOLD = 100
# How long a thread may hold the GIL while another waits for it (CPython's
# default is 5 ms). The server's two threads hand work to each other for
# every post (Trio -> the nats-py thread to publish, back with the ack; the
# projector's pull consumer the same way): each hand-off may wait out the
# interval while the Trio thread is busy, and a room actor awaits its
# append before the next command. At 0.5 ms, 500 load-test clients in 20
# rooms at 1,000 posts/s offered: 294 -> 351 and 356 -> 446 posts/s in two
# alternating pairs, CPU per post 2.12 -> 1.95 and 2.30 -> 1.82 ms
# (docs/PERFORMANCE.md).
SWITCH_INTERVAL = 0.0005


def tune_gc() -> None:
    """Move everything allocated so far out of the collector's way; raise thresholds."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(GEN0_THRESHOLD, GEN1_THRESHOLD, GEN2_THRESHOLD)


def tune_threads() -> None:
    """Shorter GIL hand-offs between the Trio and nats-py threads (``SWITCH_INTERVAL``)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


_pause_lock = threading.Lock()
_pause_holds = 0
_resume = False


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic collector while any worker thread is inside.

    A collection triggered by a worker's allocations runs in that worker,
    holding the GIL for a whole pass over the heap, and the event loop waits
    (70 ms while validating one hostile GraphQL document in the test
    process). Work run this way frees its garbage by reference counting;
    the collector resumes, if it was on, when the last worker leaves.
    """
    global _pause_holds, _resume
    with _pause_lock:
        if _pause_holds == 0:
            _resume = gc.isenabled()
            gc.disable()
        _pause_holds += 1
    try:
        yield
    finally:
        with _pause_lock:
            _pause_holds -= 1
            if _pause_holds == 0 and _resume:
                gc.enable()
