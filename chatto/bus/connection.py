"""How the bridge connects to NATS: client options and connection callbacks.

The callbacks run on the loop thread (nats-py calls them there); they only
flip the bridge's connected flag, count and log. Where, never what: no
payload, no credential reaches a log line (``redact_url`` for URLs).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import attrs

from chatto.bus.stats import BridgeStats

if TYPE_CHECKING:
    from chatto.bus.bridge import NatsSettings

log = logging.getLogger("chatto.bus.bridge")

# The same kind of client error is logged at most once in this many seconds.
ERROR_LOG_INTERVAL = 10.0


@attrs.define
class ConnectionEvents:
    """nats-py's disconnect, reconnect and error callbacks for one bridge."""

    stats: BridgeStats
    set_connected: Callable[[bool], None]
    is_closing: Callable[[], bool]
    _logged_at: dict[str, float] = attrs.Factory(dict)

    async def on_disconnect(self) -> None:
        self.set_connected(False)
        if self.is_closing():
            return
        self.stats.disconnects += 1
        log.warning("NATS connection lost; reconnecting")

    async def on_reconnect(self) -> None:
        self.set_connected(True)
        self.stats.reconnects += 1
        log.info("NATS connection re-established")

    async def on_error(self, exc: Exception) -> None:
        # nats-py reports dropped messages (SlowConsumerError) and protocol
        # trouble only here: never quietly. Where, never what (no payload).
        kind = type(exc).__name__
        errors = self.stats.client_errors
        errors[kind] = errors.get(kind, 0) + 1
        subject = getattr(exc, "subject", None)
        if subject is not None:
            sid = getattr(exc, "sid", None)
            log.error("NATS client error: %s on subject %s (subscription %s)", kind, subject, sid)
            return
        # Connection errors repeat on every reconnect attempt of an outage
        # (4 a second): one line per kind per interval, all counted.
        now = time.monotonic()
        if now - self._logged_at.get(kind, -ERROR_LOG_INTERVAL) >= ERROR_LOG_INTERVAL:
            self._logged_at[kind] = now
            log.warning("NATS client error: %s (%d so far)", kind, errors[kind])


def connect_options(s: NatsSettings, events: ConnectionEvents) -> dict[str, Any]:
    """``nats.connect`` keyword arguments: servers, credentials, reconnect forever."""
    kwargs: dict[str, Any] = {
        "servers": [u.strip() for u in s.url.split(",") if u.strip()],
        "connect_timeout": s.connect_timeout,
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.25,
        "disconnected_cb": events.on_disconnect,
        "reconnected_cb": events.on_reconnect,
        "error_cb": events.on_error,
    }
    if s.token:
        kwargs["token"] = s.token
    if s.user:
        kwargs["user"], kwargs["password"] = s.user, s.password
    if s.creds_file:
        kwargs["user_credentials"] = s.creds_file
    return kwargs


def redact_url(url: str) -> str:
    """Drop credentials embedded in a NATS URL before it reaches a message."""
    parts = []
    for u in url.split(","):
        scheme, sep, rest = u.strip().partition("://")
        if "@" in rest:
            rest = "<credentials>@" + rest.split("@", 1)[1]
        parts.append(f"{scheme}{sep}{rest}")
    return ",".join(parts)
