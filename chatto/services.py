"""The bundle of running services handed to transports (no globals)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

import attrs
import trio

from actors.hub import Hub
from actors.projector import Projector
from actors.runtime import ActorSystem
from actors.server import ServerView
from chatto.bus.bridge import NatsBridge
from chatto.bus.embedded import ProcessStatus
from chatto.errors import UnavailableError
from chatto.eventstore import JetStreamEventStore

if TYPE_CHECKING:
    from actors.users.directory import UserDirectory
    from chatto.auth.authn import Authenticator
    from chatto.auth.deletion import AccountDeleter
    from chatto.auth.ends import CredentialWatch
    from chatto.auth.oauth import Grants
    from chatto.auth.service import AccountService
    from chatto.config import Config
    from chatto.mail import Outbox
    from chatto.messaging.attachments import Attachments, Avatars
    from chatto.messaging.service import MessagingService
    from chatto.metrics import Metrics
    from chatto.permissions import Permissions
    from chatto.ratelimit import RateLimiter
    from chatto.tls.manager import CertManager


@attrs.define
class Services:
    """Everything a request handler may use, built once by ``chatto.server``."""

    config: Config
    bridge: NatsBridge
    store: JetStreamEventStore
    actors: ActorSystem
    projector: Projector
    hub: Hub
    server_view: ServerView
    directory: UserDirectory
    accounts: AccountService
    authn: Authenticator
    outbox: Outbox
    messaging: MessagingService
    deleter: AccountDeleter
    permissions: Permissions
    limiter: RateLimiter
    grants: Grants
    attachments: Attachments
    avatars: Avatars
    credentials: CredentialWatch
    metrics: Metrics
    embedded: ProcessStatus | None = None
    # The certificate manager when Chatto terminates TLS itself.
    tls: CertManager | None = None

    async def readiness(self) -> dict[str, bool]:
        """Each readiness check by name; ready only when all are true.

        ``jetstream``: the event stream answers. ``jetstream_quorum``: the
        JetStream API answers account info, which on a cluster needs a meta
        leader, i.e. a quorum of nodes (a stream leader cut off from its
        peers keeps answering stream info for a while but cannot write).
        ``projections_caught_up``: the start-up replay is done and the
        projector has not stalled since (``Projector.stalled``).
        """
        drops = self.bridge.stats.disconnects
        checks = {
            "nats_connected": self.bridge.connected,
            "projections_caught_up": self.projector.caught_up,
        }
        if self.embedded is not None:
            checks["embedded_nats_running"] = self.embedded.running
        checks["jetstream"] = checks["jetstream_quorum"] = False
        if checks["nats_connected"]:
            answers: dict[str, object] = {}

            async def probe(name: str, call: Callable[[], Awaitable[object]]) -> None:
                with trio.move_on_after(1.0):
                    try:
                        answers[name] = await call()
                        checks[name] = True
                    except UnavailableError:
                        pass

            async with trio.open_nursery() as nursery:
                nursery.start_soon(probe, "jetstream", self.store.head)
                nursery.start_soon(probe, "jetstream_quorum", self.bridge.account_info)
            head = answers.get("jetstream")
            if checks["projections_caught_up"] and isinstance(head, int):
                checks["projections_caught_up"] = not self.projector.stalled(head)
            # The connection dropped while probing: the probes may have been
            # answered after a quick reconnect, but the outage was real.
            if self.bridge.stats.disconnects != drops or not self.bridge.connected:
                checks["nats_connected"] = False
        return checks
