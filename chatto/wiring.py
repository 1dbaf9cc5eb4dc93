"""Construction of the domain and auth services from configuration."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from actors.audit import AuditActor
from actors.groups import GroupActor
from actors.kms.actor import Kms
from actors.notifications.actor import NotifyActor
from actors.projector import Projector
from actors.rbac import RbacActor, SetRule
from actors.rooms.actor import RoomActor
from actors.rooms.directory import RoomDirectory
from actors.runtime import ActorSystem
from actors.server import ServerActor
from actors.snapshot import WriteTimes
from actors.users.actor import KeyRotation, UserActor
from actors.users.directory import UserDirectory
from chatto.auth.authn import Authenticator
from chatto.auth.challenges import Challenges
from chatto.auth.cookies import CookieCodec
from chatto.auth.deletion import AccountDeleter
from chatto.auth.identity import normalize_email
from chatto.auth.keyring import Keyring
from chatto.auth.passwords import PasswordHasher
from chatto.auth.records import RecordStore
from chatto.auth.service import AccountService, AuthSettings
from chatto.auth.sessions import EndAnnouncer, SessionStore
from chatto.bus.bridge import NatsBridge
from chatto.config import Config
from chatto.errors import ChattoError
from chatto.eventstore import JetStreamEventStore
from chatto.mail import Outbox
from chatto.messaging.keys import BodyKeys
from chatto.messaging.service import MessagingService
from chatto.snapshot_store import NatsSnapshotStore


def register_domain(
    actors: ActorSystem,
    config: Config,
    store: JetStreamEventStore,
    kms: Kms,
    bridge: NatsBridge | None = None,
    checkpoint_times: WriteTimes | None = None,
) -> None:
    """Tell the actor system how to build each kind of domain actor.

    With ``bridge`` (and ``[snapshots]`` on), room actors keep checkpoints
    in the ``SNAPSHOTS`` object store (``actors.checkpoint``), their write
    durations summed in ``checkpoint_times``.
    """
    retries = config.actors.max_append_retries
    sn = config.snapshots
    every = sn.actor_events if sn.enabled and bridge is not None else 0

    def room(rid: str) -> RoomActor:
        checkpoints = NatsSnapshotStore(bridge, f"actor.room.{rid}") if every and bridge else None
        actor = RoomActor(rid, store, retries, checkpoints, config.cache.actor_hot_messages)
        actor.checkpoint_every = every
        actor.checkpoint_times = checkpoint_times
        return actor

    owners = owner_emails(config)
    actors.register("server", lambda _id: ServerActor(store, config.core.server_name, retries))
    rotation = KeyRotation(config.kms.dek_rotation_days)
    actors.register("user", lambda uid: UserActor(uid, store, kms, owners, rotation))
    actors.register("audit", lambda _id: AuditActor(store))
    actors.register("room", room)
    actors.register("group", lambda gid: GroupActor(gid, store))
    actors.register("rbac", lambda _id: RbacActor(store))
    actors.register("notify", lambda uid: NotifyActor(uid, store, retries))


def owner_emails(config: Config) -> frozenset[str]:
    """``owners.emails``, normalised."""
    return frozenset(normalize_email(e) for e in config.owners.emails)


async def build_auth(
    config: Config,
    bridge: NatsBridge,
    actors: ActorSystem,
    directory: UserDirectory,
    projector: Projector,
    outbox: Outbox,
    ends: EndAnnouncer,
) -> tuple[AccountService, Authenticator]:
    """The account service and the request authenticator, wired to storage;
    ``ends`` hears of every revoked session key."""
    au, w = config.auth, config.webserver
    keyring = Keyring(config.core.secret_key)
    records = RecordStore(bridge)
    ttl = int(au.session_ttl_days * 86400)
    sessions = SessionStore(records, keyring, ttl, ends)
    cookies = CookieCodec(
        w.cookie_signing_secret, w.cookie_encryption_secret, config.cookies_secure, ttl
    )
    challenges = Challenges(records, keyring, au.code_ttl_seconds, au.reset_ttl_seconds)
    hasher = PasswordHasher(au.bcrypt_cost, au.bcrypt_threads, config.limits.bcrypt_queue)
    await hasher.warm_up()
    accounts = AccountService(
        AuthSettings(w.url, au.registration, owner_emails(config)),
        actors,
        directory,
        projector,
        records,
        keyring,
        challenges,
        hasher,
        outbox,
    )
    return accounts, Authenticator(sessions, cookies, directory)


def build_deleter(
    accounts: AccountService,
    authn: Authenticator,
    bridge: NatsBridge,
    actors: ActorSystem,
    projector: Projector,
    rooms: RoomDirectory,
    kms: Kms,
    keys: BodyKeys,
) -> AccountDeleter:
    """The account-deletion job, sharing the auth layer's stores and keyring."""
    return AccountDeleter(
        actors,
        projector,
        accounts.directory,
        rooms,
        authn.sessions,
        accounts.records,
        accounts.keyring,
        kms,
        keys,
        bridge,
    )


async def seed_permissions(actors: ActorSystem, projector: Projector) -> None:
    """#announcements is read-only through a room-scope deny for everyone
    (run once, when the room is created, so an operator's change sticks)."""
    rule = SetRule("role:everyone", "room:announcements", "message.post", "deny")
    done = await actors.ask("rbac", "", rule)
    await projector.wait_for(done.last_seq)


log = logging.getLogger(__name__)


def invited_join(messaging: MessagingService) -> Callable[[str, str], Awaitable[None]]:
    """The hook that puts a user who signed up through an invite into its room.

    The account exists by then: a room archived, deleted or banning them
    since the invite was made only skips the join (logged by id).
    """

    async def join(user_id: str, room_id: str) -> None:
        try:
            await messaging.join(user_id, room_id)
        except ChattoError as exc:
            log.info("invited user %s not joined to %s: %s", user_id, room_id, exc.code)

    return join
