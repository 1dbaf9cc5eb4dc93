"""The server's root: start every part in order, stop them in reverse.

Start order (DESIGN.md section 1): embedded NATS (unless external), the
NATS bridge, storage bootstrap, the projector (replays, then follows), the
actor system, the HTTP server. ``serve_chatto`` reports ``started`` with a
``Running`` handle once HTTP accepts connections. Setting the ``shutdown``
event stops HTTP gracefully (Hypercorn's grace period), then the rest is
cancelled from the inside out, so NATS outlives everything that uses it.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from contextlib import AsyncExitStack, asynccontextmanager

import attrs
import hypercorn.trio
import trio
from hypercorn.config import Config as HypercornConfig

from actors.events import Recorded
from actors.hub import Hub
from actors.kms.actor import Kms, register_kms
from actors.kms.records import BucketStore
from actors.notifications.feed import NotificationFeed
from actors.projector import Projector, ReadModel, SnapshotPolicy
from actors.rbac import RbacView
from actors.rooms.directory import RoomDirectory, live_topics
from actors.runtime import RuntimeSettings, open_actor_system
from actors.server import SETTINGS_TOPIC, ServerView, live_kind
from actors.snapshot import WriteTimes
from actors.users.directory import UserDirectory
from actors.users.status import PROFILE_EVENTS
from chatto.auth.ends import CredentialWatch
from chatto.auth.oauth import Grants
from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import EmbeddedSettings, ProcessStatus, open_embedded_nats
from chatto.bus.storage import ENCRYPTION_KEYS, RUNTIME_STATE, bootstrap_storage, keep_storage
from chatto.config import Config
from chatto.errors import StartupError
from chatto.eventstore import JetStreamEventStore
from chatto.gql.schema import build_schema
from chatto.http.app import ChattoApp
from chatto.http.listener import Listener
from chatto.http.ws_server import WsLimits
from chatto.http.ws_session import MAX_MESSAGE_BYTES
from chatto.kms_setup import open_master_key
from chatto.mail import Outbox, make_mailer
from chatto.messaging.attachments import Attachments, Avatars
from chatto.messaging.keys import BodyKeys
from chatto.messaging.live import LiveRelay
from chatto.messaging.service import MessagingService
from chatto.messaging.shred import ShredFollower
from chatto.metrics import Metrics
from chatto.permissions import Permissions
from chatto.ratelimit import RateLimiter
from chatto.services import Services
from chatto.snapshot_store import NatsIndexObjects, NatsSnapshotStore
from chatto.tls.challenge import RedirectApp
from chatto.tls.context import TlsHypercornConfig
from chatto.tls.manager import CertManager, TlsSettings
from chatto.wiring import (
    build_auth,
    build_deleter,
    invited_join,
    register_domain,
    seed_permissions,
)

log = logging.getLogger(__name__)

ASGIFramework = ChattoApp | RedirectApp


@attrs.frozen
class Running:
    """Handle on a started server (tests and the CLI use it)."""

    services: Services
    http_url: str
    # The plain listener (ACME challenges + redirects) when TLS is enabled.
    redirect_url: str | None = None


def live_routing(rooms: RoomDirectory) -> Callable[[Recorded], Iterable[str]]:
    """Hub topics of an event: its room/user topics; ``settings`` for what
    every client's sidebar shows (server profile, groups, order); and for a
    profile change, the user topic of everyone sharing a room with that user."""

    def topics(rec: Recorded) -> Iterable[str]:
        yield from live_topics(rec)
        if live_kind(rec) is not None:
            yield SETTINGS_TOPIC
        elif rec.envelope.entity.kind == "user" and isinstance(rec.envelope.event, PROFILE_EVENTS):
            me = rec.envelope.entity.id
            yield from (f"user.{u}" for u in rooms.co_members(me) if u != me)

    return topics


@asynccontextmanager
async def open_nats(
    config: Config, stopping: trio.Event | None = None
) -> AsyncIterator[tuple[NatsBridge, ProcessStatus | None]]:
    """Embedded or external NATS, connected through the bridge (no restarts once ``stopping``)."""
    async with AsyncExitStack() as stack:
        embedded: ProcessStatus | None = None
        n = config.nats
        if n.embedded.enabled:
            embedded = await stack.enter_async_context(
                open_embedded_nats(
                    EmbeddedSettings(
                        host=n.embedded.host,
                        port=n.embedded.port,
                        store_dir=config.nats_store_dir,
                        token=n.embedded.token,
                    ),
                    stopping,
                )
            )
            settings = NatsSettings(
                url=embedded.url,
                token=n.embedded.token,
                connect_timeout=n.connect_timeout_seconds,
                request_timeout=n.request_timeout_seconds,
            )
        else:
            settings = NatsSettings(
                url=n.url,
                token=n.token,
                user=n.user,
                password=n.password,
                creds_file=n.creds_file,
                connect_timeout=n.connect_timeout_seconds,
                request_timeout=n.request_timeout_seconds,
            )
        bridge = await stack.enter_async_context(open_nats_bridge(settings))
        yield bridge, embedded


def hypercorn_config(
    config: Config, port: int | None = None, base: HypercornConfig | None = None
) -> HypercornConfig:
    """Hypercorn settings for one listener on ``webserver.host``."""
    hc = HypercornConfig() if base is None else base
    w = config.webserver
    host = f"[{w.host}]" if ":" in w.host else w.host
    hc.bind = [f"{host}:{w.port if port is None else port}"]
    hc.graceful_timeout = w.shutdown_grace_seconds
    # Hypercorn sets SO_REUSEPORT on the listener when workers > 1: every
    # worker process binds the same port and the kernel spreads connections.
    hc.workers = w.workers
    # ... and warns that serve() starts no workers itself: chatto.workers does.
    warnings.filterwarnings("ignore", "The config `workers` has no affect", Warning)
    hc.websocket_max_message_size = 1024 * 1024
    hc.accesslog = None
    hc.errorlog = _hypercorn_log()
    return hc


def ws_limits(config: Config) -> WsLimits:
    w = config.webserver
    return WsLimits(
        max_message_bytes=MAX_MESSAGE_BYTES,
        send_buffer_bytes=w.websocket_send_buffer_bytes,
        send_buffer_frames=w.websocket_send_buffer_frames,
    )


class _DropRunningOn(logging.Filter):
    """Hypercorn's "Running on ..." line: Chatto logs its own "listening on" once."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Running on ")


def _hypercorn_log() -> logging.Logger:
    logger = logging.getLogger("hypercorn.error")
    if not any(isinstance(f, _DropRunningOn) for f in logger.filters):
        logger.addFilter(_DropRunningOn())
    return logger


def warn_about_config(config: Config) -> None:
    """Startup warnings that do not stop the server."""
    if config.auth.registration_alias_used:
        log.warning(
            "auth.registration_open is deprecated: set auth.registration = %r instead",
            config.auth.registration,
        )
    if not config.webserver.cookie_encryption_secret:
        log.warning(
            "webserver.cookie_encryption_secret is not set: session cookies are signed "
            "but not encrypted (run `chatto init` to generate one)"
        )


async def serve_chatto(
    config: Config,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the whole server until ``shutdown`` is set."""
    warn_about_config(config)
    async with AsyncExitStack() as stack:
        bridge, embedded = await stack.enter_async_context(open_nats(config, shutdown))
        await bootstrap_storage(bridge, config.nats.replicas)
        # Closed before NATS: an HSM session ends with the server.
        master = await stack.enter_async_context(open_master_key(config, bridge))
        store = JetStreamEventStore(bridge)
        hub = Hub()
        a, w = config.actors, config.webserver
        runtime = RuntimeSettings(
            mailbox_size=a.mailbox_size,
            ask_timeout=a.ask_timeout_seconds,
            idle_seconds=a.idle_seconds,
            max_append_retries=a.max_append_retries,
        )
        async with trio.open_nursery() as core, open_actor_system(runtime) as actors:
            kms = Kms(actors)
            register_kms(
                actors,
                BucketStore(bridge, ENCRYPTION_KEYS),
                BucketStore(bridge, RUNTIME_STATE),
                master,
            )
            server_view = ServerView(config.core.server_name)
            directory = UserDirectory(kms)
            cache = config.cache
            sn = config.snapshots
            rooms = RoomDirectory(
                cache.cold_pages,
                cache.hot_messages,
                cache.hot_rooms,
                cache.index_rooms,
                NatsIndexObjects(bridge) if sn.enabled else None,
                cache.index_mb << 20,
            )
            rbac = RbacView()
            keys = BodyKeys(actors, kms, directory)
            shreds = ShredFollower(actors, directory, keys)
            # After the directory: it ends sockets on the user events it has applied.
            credentials = CredentialWatch(bridge, directory)
            feed = NotificationFeed(rooms)  # after `rooms`: it reads the messages it has applied
            models: list[ReadModel] = [
                server_view,
                directory,
                rooms,
                rbac,
                shreds,
                credentials,
                feed,
            ]
            projector = Projector(
                store,
                models,
                hub,
                live_routing(rooms),
                snapshots=NatsSnapshotStore(bridge) if sn.enabled else None,
                policy=SnapshotPolicy(sn.every_events, sn.min_interval_seconds),
            )
            checkpoint_times = WriteTimes()
            register_domain(actors, config, store, kms, bridge, checkpoint_times)
            await core.start(projector.serve)
            if sn.enabled:
                await core.start(projector.serve_snapshots)
            await core.start(keep_storage, bridge, config.nats.replicas)
            outbox = Outbox(make_mailer(config.smtp))
            await core.start(outbox.serve)
            live = LiveRelay(
                bridge, hub, rooms.co_members, presence_enabled=config.presence.enabled
            )
            await core.start(live.serve)
            await core.start(live.serve_ticks)
            accounts, authn = await build_auth(
                config, bridge, actors, directory, projector, outbox, credentials
            )
            credentials.follow_cache(authn.sessions.cache)
            await core.start(credentials.serve, authn.sessions.expires_at)
            await accounts.ensure_claims()
            dm_key = accounts.keyring.derive_key("dm-id")
            messaging = MessagingService(
                actors, projector, rooms, directory, keys, live, bridge, dm_key, feed
            )
            if "announcements" in await messaging.seed():
                await seed_permissions(actors, projector)
            accounts.after_register.append(messaging.join_seeded)
            accounts.after_invite.append(invited_join(messaging))
            metrics = Metrics()
            deleter = build_deleter(accounts, authn, bridge, actors, projector, rooms, kms, keys)
            await core.start(deleter.serve)
            services = Services(
                config=config,
                bridge=bridge,
                store=store,
                actors=actors,
                projector=projector,
                hub=hub,
                server_view=server_view,
                directory=directory,
                accounts=accounts,
                authn=authn,
                outbox=outbox,
                messaging=messaging,
                deleter=deleter,
                permissions=Permissions(rbac, rooms),
                limiter=RateLimiter(bridge, accounts.keyring, config.limits),
                avatars=Avatars(actors, projector, keys, bridge),
                credentials=credentials,
                metrics=metrics,
                attachments=Attachments(actors, projector, rooms, keys, bridge, w.max_upload_bytes),
                grants=Grants(
                    accounts.records, accounts.keyring, config.auth.oauth_code_ttl_seconds
                ),
                embedded=embedded,
                tls=CertManager(TlsSettings.from_config(config)) if w.tls.enabled else None,
            )
            metrics.attach(services, checkpoint_times)
            app = ChattoApp(services, build_schema(), shutdown)
            await _serve_http(app, config, shutdown, services, task_status)
            if sn.enabled and sn.write_on_shutdown:
                await _final_snapshot(projector, sn.shutdown_timeout_seconds)
            core.cancel_scope.cancel()


async def _final_snapshot(projector: Projector, within: float) -> None:
    """A snapshot on a graceful stop, so the next start replays almost nothing."""
    with trio.move_on_after(within) as scope:
        await projector.write_snapshot()
    if scope.cancelled_caught:
        log.warning("projector snapshot on shutdown did not finish within %gs", within)


async def _serve_http(
    app: ChattoApp,
    config: Config,
    shutdown: trio.Event,
    services: Services,
    task_status: trio.TaskStatus[Running],
) -> None:
    w = config.webserver
    listening = f"{w.host}:{w.port}"
    try:
        async with trio.open_nursery() as http:
            hc = hypercorn_config(config)
            redirect: RedirectApp | None = None
            redirect_url = None
            if services.tls is not None:
                listening = f"{w.host}:{w.tls.http_port}"
                redirect, redirect_url = await _start_tls(http, services.tls, config, shutdown)
                hc = hypercorn_config(config, base=TlsHypercornConfig(services.tls.context))
                listening = f"{w.host}:{w.port}"
            binds: list[str]
            if services.tls is None and w.websocket_server == "chatto":
                # GraphQL sockets on Chatto's coalescing path; the rest Hypercorn's.
                listener = Listener(app, hc, ws_limits(config), services.metrics.ws_writes)
                binds = await http.start(listener.serve, shutdown)
            else:
                binds = await http.start(_hypercorn, app, hc, shutdown)
            url = binds[0] if binds else f"http://{w.host}:{w.port}"
            bound = int(url.rsplit(":", 1)[1])
            app.cors = app.cors.with_port(bound)
            if redirect is not None:
                redirect.https_port = bound
                log.info(
                    "Chatto answers ACME challenges and redirects to HTTPS on %s", redirect_url
                )
            log.info("Chatto is listening on %s", url)
            task_status.started(Running(services=services, http_url=url, redirect_url=redirect_url))
    except* OSError as group:
        exc: BaseException = group
        while isinstance(exc, BaseExceptionGroup):
            exc = exc.exceptions[0]
        reason = getattr(exc, "strerror", None) or str(exc)
        raise StartupError(f"cannot listen on {listening}: {reason}") from None


async def _start_tls(
    http: trio.Nursery, tls: CertManager, config: Config, shutdown: trio.Event
) -> tuple[RedirectApp, str]:
    """The plain listener first (the CA must reach the challenges), then a certificate."""
    w = config.webserver
    redirect = RedirectApp(tls.tokens, tls.domain, w.port)
    plain = hypercorn_config(config, w.tls.http_port)
    binds: list[str] = await http.start(_hypercorn, redirect, plain, shutdown)
    await http.start(_until_shutdown, tls.serve, shutdown)
    return redirect, binds[0]


async def _until_shutdown(
    serve: Callable[..., Awaitable[object]],
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[object] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run a never-ending ``serve`` task until ``shutdown`` is set."""
    async with trio.open_nursery() as nursery:
        task_status.started(await nursery.start(serve))
        await shutdown.wait()
        nursery.cancel_scope.cancel()


async def _hypercorn(
    app: ASGIFramework,
    hc: HypercornConfig,
    shutdown: trio.Event,
    *,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    await hypercorn.trio.serve(
        app,  # type: ignore[arg-type]
        hc,
        shutdown_trigger=shutdown.wait,
        task_status=task_status,
    )
