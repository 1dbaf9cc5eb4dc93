"""Live-only signals: typing, presence and read markers, relayed through core NATS.

Typing is never stored; presence lives in ``MEMORY_CACHE`` with a 60 s TTL
(clients refresh every 30 s); read markers live in RUNTIME_STATE and the
signal only tells the user's other clients. All are published on core NATS
subjects (``live.room.<id>``, ``live.presence``, ``live.read.<user>``) and
every process feeds what it receives into its own hub, so users on
different processes see each other.

A presence change reaches only the user's audience: themselves and the
people who share a room or DM with them (the receiving process works that
out from its read model and publishes to each one's ``user.<id>`` topic),
never every connected client. With presence disabled nothing is stored or
sent and everyone is OFFLINE to others.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable

import attrs
import trio

from actors.hub import Hub
from chatto.bus.bridge import NatsBridge
from chatto.bus.reader import open_subscription
from chatto.bus.storage import MEMORY_CACHE
from chatto.errors import BusyError, InvalidInputError

log = logging.getLogger(__name__)

PRESENCE_TTL = 60
PRESENCE_REFRESH = 30.0
# Idle live streams are woken this often (``Hub.tick``) to refresh presence:
# a refresh is at most this late, well within ``PRESENCE_TTL``.
TICK_SECONDS = 10.0
STATUSES = ("ONLINE", "AWAY", "DND", "OFFLINE")


@attrs.frozen
class TypingSignal:
    room_id: str
    user_id: str
    typing: bool


@attrs.frozen
class PresenceSignal:
    user_id: str
    status: str


@attrs.frozen
class ReadMarkerSignal:
    """The user moved a read marker (to the message at ``seq``)."""

    user_id: str
    room_id: str
    event_id: str
    seq: int
    thread_root: str = ""


Audience = Callable[[str], Iterable[str]]


class LiveRelay:
    """Publishes and receives typing and presence signals.

    ``audience(user_id)`` names who sees that user's presence besides the
    user (people sharing a room or DM); ``presence_enabled`` False stores
    and sends no presence at all.
    """

    def __init__(
        self,
        bridge: NatsBridge,
        hub: Hub,
        audience: Audience = lambda _user: (),
        *,
        presence_enabled: bool = True,
    ) -> None:
        self._bridge = bridge
        self._hub = hub
        self._audience = audience
        self.presence_enabled = presence_enabled

    async def typing(self, room_id: str, user_id: str, typing: bool) -> None:
        doc = {"r": room_id, "u": user_id, "t": typing}
        await self._bridge.publish_core(f"live.room.{room_id}", json.dumps(doc).encode())

    async def read_marker(
        self, user_id: str, room_id: str, event_id: str, seq: int, thread_root: str
    ) -> None:
        doc = {"u": user_id, "r": room_id, "e": event_id, "s": seq, "t": thread_root}
        await self._bridge.publish_core(f"live.read.{user_id}", json.dumps(doc).encode())

    async def set_presence(self, user_id: str, status: str) -> None:
        if status not in STATUSES:
            raise InvalidInputError("presence must be ONLINE, AWAY, DND or OFFLINE")
        if not self.presence_enabled:
            return
        doc = {"s": status, "at": int(time.time())}
        if status == "OFFLINE":
            await self._bridge.kv_delete(MEMORY_CACHE, f"presence.{user_id}")
        else:
            await self._bridge.kv_put(
                MEMORY_CACHE,
                f"presence.{user_id}",
                json.dumps(doc).encode(),
                ttl_seconds=PRESENCE_TTL,
            )
        payload = json.dumps({"u": user_id, "s": status}).encode()
        await self._bridge.publish_core("live.presence", payload)

    async def come_online(self, user_id: str) -> str:
        """A client subscribed: ONLINE if the user was offline (broadcast), else keep.

        Another tab or a reconnect within the TTL changes nothing, so it is
        not broadcast to everyone again; returns the status now in force
        (ONLINE, unstored, with presence disabled: the client's own first event).
        """
        if not self.presence_enabled:
            return "ONLINE"
        status = await self.presence(user_id)
        if status == "OFFLINE":
            await self.set_presence(user_id, "ONLINE")
            return "ONLINE"
        await self.refresh_presence(user_id)
        return status

    async def refresh_presence(self, user_id: str) -> None:
        """Extend the current status's TTL without broadcasting; ONLINE if it lapsed."""
        if not self.presence_enabled:
            return
        status = await self.presence(user_id)
        if status == "OFFLINE":
            await self.set_presence(user_id, "ONLINE")
            return
        doc = {"s": status, "at": int(time.time())}
        await self._bridge.kv_put(
            MEMORY_CACHE, f"presence.{user_id}", json.dumps(doc).encode(), ttl_seconds=PRESENCE_TTL
        )

    async def presence(self, user_id: str) -> str:
        if not self.presence_enabled:
            return "OFFLINE"
        entry = await self._bridge.kv_get(MEMORY_CACHE, f"presence.{user_id}")
        if entry is None:
            return "OFFLINE"
        try:
            return str(json.loads(entry.value)["s"])
        except (ValueError, KeyError):
            return "OFFLINE"

    async def serve_ticks(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Wake idle live streams every ``TICK_SECONDS`` (their presence refresh)."""
        task_status.started()
        while True:
            await trio.sleep(TICK_SECONDS)
            self._hub.tick()

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Feed signals from NATS into the hub; resubscribe if dropped."""
        started = False
        while True:
            try:
                async with open_subscription(self._bridge, "live.>", capacity=10_000) as sub:
                    if not started:
                        started = True
                        task_status.started()
                    async for batch in sub:
                        for subject, data in batch:
                            self._dispatch(subject, data)
            except BusyError:
                log.warning("live relay fell behind; resubscribing")
            await trio.sleep(0.1)

    def _dispatch(self, subject: str, data: bytes) -> None:
        try:
            doc = json.loads(data)
            if subject == "live.presence":
                self._publish_presence(PresenceSignal(str(doc["u"]), str(doc["s"])))
            elif subject.startswith("live.room."):
                sig = TypingSignal(str(doc["r"]), str(doc["u"]), bool(doc["t"]))
                self._hub.publish(f"room.{sig.room_id}", sig)
            elif subject.startswith("live.read."):
                mark = ReadMarkerSignal(
                    str(doc["u"]), str(doc["r"]), str(doc["e"]), int(doc["s"]), str(doc["t"])
                )
                self._hub.publish(f"user.{mark.user_id}", mark)
        except (ValueError, KeyError, TypeError):
            log.debug("ignored a malformed live signal on %s", subject)

    def _publish_presence(self, signal: PresenceSignal) -> None:
        """To the user and each person sharing a room with them, once each."""
        audience = set(self._audience(signal.user_id))
        audience.add(signal.user_id)
        for user_id in audience:
            self._hub.publish(f"user.{user_id}", signal)
