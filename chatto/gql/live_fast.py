"""The fast lane of ``myEvents``: a room message event written without waking the reader.

``source_my_events`` installs ``FastFilter.deliver`` as its hub subscriber's
``fast`` hook when its operation has a fast lane (``gql/fanout.py``). The
hub calls it only while the reader is parked on an empty channel, so it
decides exactly what the reader would have decided for the same item at
that moment, with the same functions, and declines (the item is then
queued for the reader) whenever the reader would have had to do more than
yield one shareable result: a credential that ended, a notification for
this viewer, a message below the hot window, a result that depends on the
viewer or a resolver that would wait.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import attrs

from actors.events import Recorded
from actors.rooms.events import (
    MessageEdited,
    MessagePinned,
    MessagePosted,
    MessageRetracted,
    MessageUnpinned,
    ReactionChanged,
)
from chatto.gql.context import SHARE
from chatto.gql.notify_live import arrived

if TYPE_CHECKING:
    from chatto.auth.ends import Credential
    from chatto.gql.context import Info
    from chatto.gql.fanout import SharedStream

# Room events that never change the subscriber's topics, settings or
# session: the only ones the lane takes.
FAST_EVENTS = frozenset(
    {
        MessagePosted,
        MessageEdited,
        MessageRetracted,
        ReactionChanged,
        MessagePinned,
        MessageUnpinned,
    }
)


@attrs.define
class FastLane:
    """One live operation's way around its reader task (lean WebSocket path only).

    ``push`` frames a result text and queues it on the socket (False when
    the socket's queue is full: the event then takes the usual path, which
    closes a slow consumer); ``stream`` renders events (set when the
    operation's results start).
    """

    push: Callable[[str], bool]
    stream: SharedStream | None = None


FAST_LANE: ContextVar[FastLane | None] = ContextVar("chatto_fast_lane", default=None)


class Seen:
    """The last stream sequences a live stream delivered (an event can come on two topics)."""

    def __init__(self, size: int = 256) -> None:
        self._order: deque[int] = deque(maxlen=size)
        self._set: set[int] = set()

    def __contains__(self, seq: int) -> bool:
        return seq in self._set

    def add(self, seq: int) -> None:
        if len(self._order) == self._order.maxlen:
            self._set.discard(self._order[0])
        self._order.append(seq)
        self._set.add(seq)

    def first(self, seq: int) -> bool:
        """Record ``seq``; whether it was new."""
        if seq in self._set:
            return False
        self.add(seq)
        return True


class FastFilter:
    """One subscriber's fast lane: decide as the reader would, then push the frame."""

    def __init__(
        self,
        info: Info,
        me: str,
        cred: Credential | None,
        seen: Seen,
        lane: FastLane,
        stream: SharedStream,
        room_event: Callable[[Recorded, Info], dict[str, Any] | None],
        still_visible: Callable[[Info, str, Recorded], bool],
    ) -> None:
        # ``room_event`` and ``still_visible`` are the reader's own functions
        # (chatto/gql/live_events.py, which imports this module).
        self._info = info
        self._me = me
        self._cred = cred
        self._seen = seen
        self._lane = lane
        self._stream = stream
        self._room_event = room_event
        self._still_visible = still_visible

    def deliver(self, item: Any) -> bool:
        """True when the item was handled here (written, or dropped as the reader would)."""
        if type(item) is not Recorded or type(item.envelope.event) not in FAST_EVENTS:
            return False
        cred = self._cred
        if cred is None or cred.ended:
            return False  # the reader says SESSION_TERMINATED
        seq = item.seq
        if seq in self._seen:
            return True
        info, me = self._info, self._me
        if not self._still_visible(info, me, item):
            self._seen.add(seq)
            return True
        if arrived(info, me, item) is not None:
            return False  # a NOTIFICATION follows: the reader yields both
        text = self._stream.text_for(item)
        if text is None:
            out = self._room_event(item, info)
            if out is None or ("message" in out and out["message"] is None):
                return False  # below the hot window: read back by the reader
            out[SHARE] = item
            text = self._stream.render_now(out)
            if text is None:
                return False
        if not self._lane.push(text):
            return False  # the socket's queue is full: the reader closes it
        self._seen.add(seq)
        return True
