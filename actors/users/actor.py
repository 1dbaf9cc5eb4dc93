"""The user entity: ``UserActor`` owns credentials, PII epochs and roles.

PII fields are sealed in ``decide`` with the user's PII DEK, which the
actor obtains (creates on registration, unwraps afterwards) through the
KMS actor before deciding. Event ids are chosen up front because they are
part of each sealed field's AAD.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import attrs

from actors.entity import Committed, Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.ids import new_id
from actors.kms.actor import Kms
from actors.store import EventStore
from actors.users.events import (
    BODY_PURPOSE,
    PII_PURPOSE,
    AvatarSet,
    CredentialRevoked,
    EmailVerified,
    LoginFailed,
    LoginSucceeded,
    PasswordSet,
    ProfileUpdated,
    RoleGranted,
    UserDEKGenerated,
    UserDeleted,
    UserDeletionStarted,
    UserRegistered,
)
from actors.users.status import (
    AvatarRemoved,
    ClearStatus,
    RemoveAvatar,
    SetStatus,
    StatusCleared,
    StatusSet,
)
from chatto.crypto import aad
from chatto.crypto.pii import seal_pii
from chatto.errors import ConflictError, InvalidInputError, NotFoundError

OWNER = "owner"


@attrs.frozen
class CreateUser:
    login: str
    display_name: str
    email: str
    password_hash: str


@attrs.frozen
class SetPassword:
    password_hash: str
    reason: str
    # Reset tokens carry the generation they were minted at; a stale one loses.
    expected_generation: int | None = None


@attrs.frozen
class VerifyEmail:
    email: str


@attrs.frozen
class UpdateProfile:
    display_name: str


@attrs.frozen
class RecordLogin:
    ok: bool
    method: str
    ip_hash: str


@attrs.frozen
class RecordRevocation:
    kind: str


@attrs.frozen
class EnsureBodyKey:
    """The user's current message-body DEK epoch: created on first use, and a
    new epoch once the current one is older than the rotation period."""


@attrs.frozen
class KeyRotation:
    """When a user's body key gets a new epoch (``kms.dek_rotation_days``; 0: never).

    Old epochs stay readable (their DEKs are kept, wrapped by the same KEK)
    and shredding destroys them all. ``clock`` returns seconds (tests set it).
    """

    every_days: float = 30.0
    clock: Callable[[], float] = time.time

    def due(self, generated_at_ms: int) -> bool:
        if self.every_days <= 0:
            return False
        return self.clock() * 1000 - generated_at_ms >= self.every_days * 86_400_000


@attrs.frozen
class SetAvatar:
    content_type: str
    epoch: int
    version: str


@attrs.frozen
class StartDeletion:
    by: str


@attrs.frozen
class FinishDeletion:
    pass


@attrs.frozen
class GetKeyRefs:
    """Every KEK and DEK ref of the user (for shredding)."""


@attrs.frozen
class GetPasswordSeqs:
    """Stream sequences of the stored events holding a password hash (for erasing)."""


PII_COMMANDS = (CreateUser, VerifyEmail, UpdateProfile, SetStatus)


class UserActor(EntityActor):
    """One user's write side. Emails arrive normalised (lower-case, trimmed)."""

    def __init__(
        self,
        user_id: str,
        store: EventStore,
        kms: Kms,
        owner_emails: frozenset[str],
        rotation: KeyRotation | None = None,
    ) -> None:
        super().__init__(EntityRef("user", user_id), store)
        self.user_id = user_id
        self.kms = kms
        self.owner_emails = owner_emails
        self.rotation = rotation or KeyRotation()
        self.clock = self.rotation.clock  # rotation is measured on the clock that stamps keys
        self.body_at_ms = 0  # when the current body epoch was generated
        self.exists = False
        self.generation = 0
        self.password_hash = ""
        # Where each hash the user ever had is stored: a deletion erases them,
        # since a bcrypt hash left in the log can still be attacked offline.
        self.password_seqs: list[int] = []
        self.roles: set[str] = set()
        self.email_count = 0
        self.pii: UserDEKGenerated | None = None
        self.body: UserDEKGenerated | None = None
        self.dek_events: list[UserDEKGenerated] = []
        self._pii_key: bytes | None = None
        self._pending_dek: UserDEKGenerated | None = None
        self._pending_body: UserDEKGenerated | None = None
        self.deleting = False
        self.deleted = False

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, UserDEKGenerated):
            self.dek_events.append(event)
            if event.purpose == PII_PURPOSE and (self.pii is None or event.epoch > self.pii.epoch):
                self.pii, self._pii_key = event, None
            if event.purpose == BODY_PURPOSE and (
                self.body is None or event.epoch > self.body.epoch
            ):
                self.body, self.body_at_ms = event, recorded.envelope.at_ms
        elif isinstance(event, UserRegistered):
            self.exists = True
        elif isinstance(event, PasswordSet):
            self.password_hash, self.generation = event.password_hash, event.auth_generation
            self.password_seqs.append(recorded.seq)
        elif isinstance(event, EmailVerified):
            self.email_count += 1
        elif isinstance(event, RoleGranted):
            self.roles.add(event.role)
        elif isinstance(event, UserDeletionStarted):
            self.deleting = True
        elif isinstance(event, UserDeleted):
            self.deleted = True

    async def handle(self, command: Any) -> Committed:
        if isinstance(command, PII_COMMANDS):
            await self._ensure_pii_key(create=isinstance(command, CreateUser))
        if isinstance(command, EnsureBodyKey) and self._body_key_needed() and self.pii is not None:
            epoch = 1 if self.body is None else self.body.epoch + 1
            context = aad.dek_wrap_aad(self.user_id, BODY_PURPOSE, epoch)
            handle = await self.kms.generate_dek(self.pii.kek_ref, context)
            self._pending_body = UserDEKGenerated(
                BODY_PURPOSE, epoch, handle.dek_ref, handle.kek_ref, handle.alg, handle.wrap_version
            )
        try:
            return await super().handle(command)
        finally:
            self._pending_dek = None
            self._pending_body = None

    async def _ensure_pii_key(self, create: bool) -> None:
        if self._pii_key is not None:
            return
        if self.pii is None:
            if not create:
                raise NotFoundError("no such user")
            context = aad.dek_wrap_aad(self.user_id, PII_PURPOSE, 1)
            kek_ref = await self.kms.create_kek()
            handle = await self.kms.generate_dek(kek_ref, context)
            self._pending_dek = UserDEKGenerated(
                PII_PURPOSE, 1, handle.dek_ref, handle.kek_ref, handle.alg, handle.wrap_version
            )
            self._pii_key = await self.kms.unwrap_dek(handle.dek_ref, handle.kek_ref, context)
            return
        context = aad.dek_wrap_aad(self.user_id, PII_PURPOSE, self.pii.epoch)
        self._pii_key = await self.kms.unwrap_dek(self.pii.dek_ref, self.pii.kek_ref, context)

    def _body_key_needed(self) -> bool:
        """No body key yet, or the current one is due for rotation."""
        if self.body is None:
            return True
        return self.rotation.due(self.body_at_ms)

    def _epoch(self) -> int:
        source = self._pending_dek or self.pii
        assert source is not None
        return source.epoch

    def _seal(self, event_id: str, event_type: str, field: str, value: str) -> str:
        assert self._pii_key is not None
        return seal_pii(
            self._pii_key,
            event_id=event_id,
            user_id=self.user_id,
            event_type=event_type,
            field=field,
            epoch=self._epoch(),
            value=value,
        )

    def decide(self, command: Any) -> Decision:
        if isinstance(command, CreateUser):
            return self._create(command)
        if not self.exists or self.deleted:
            raise NotFoundError("no such user")
        if isinstance(command, GetKeyRefs):
            keks = tuple(sorted({e.kek_ref for e in self.dek_events}))
            return Decision(reply=(keks, tuple(e.dek_ref for e in self.dek_events)))
        if isinstance(command, GetPasswordSeqs):
            return Decision(reply=tuple(self.password_seqs))
        if isinstance(command, StartDeletion):
            return Decision([] if self.deleting else [UserDeletionStarted(command.by)])
        if isinstance(command, FinishDeletion):
            if not self.deleting:
                raise ConflictError("deletion was not started")
            return Decision([UserDeleted()])
        if self.deleting and not isinstance(command, RecordRevocation | RecordLogin):
            raise NotFoundError("no such user")
        if isinstance(command, SetPassword):
            if (
                command.expected_generation is not None
                and command.expected_generation != self.generation
            ):
                raise ConflictError("this link is no longer valid")
            event = PasswordSet(command.password_hash, self.generation + 1, command.reason)
            return Decision([event], reply=event.auth_generation)
        if isinstance(command, VerifyEmail):
            return self._verify_email(command.email)
        if isinstance(command, UpdateProfile):
            eid = new_id()
            enc = self._seal(eid, ProfileUpdated.TYPE, "display_name", command.display_name)
            return Decision([ProfileUpdated(enc, self._epoch())], event_ids=[eid])
        if isinstance(command, RecordLogin):
            ev: Event = (
                LoginSucceeded(command.method, command.ip_hash)
                if command.ok
                else LoginFailed(command.ip_hash)
            )
            return Decision([ev])
        if isinstance(command, RecordRevocation):
            return Decision([CredentialRevoked(command.kind)])
        if isinstance(command, SetAvatar):
            return Decision([AvatarSet(command.content_type, command.epoch, command.version)])
        if isinstance(command, SetStatus):
            eid = new_id()
            text = self._seal(eid, StatusSet.TYPE, "status_text", command.text)
            emoji = self._seal(eid, StatusSet.TYPE, "status_emoji", command.emoji)
            return Decision([StatusSet(text, emoji, self._epoch())], event_ids=[eid])
        if isinstance(command, ClearStatus):
            return Decision([StatusCleared()])
        if isinstance(command, RemoveAvatar):
            return Decision([AvatarRemoved()])
        if isinstance(command, EnsureBodyKey):
            if not self._body_key_needed():
                # A key another process generated meanwhile is found when
                # this actor's own append conflicts.
                return Decision(reply=self.body, stale_ok=True)
            if self._pending_body is None or (
                self.body is not None and self._pending_body.epoch <= self.body.epoch
            ):
                if self.body is not None:
                    return Decision(reply=self.body)  # rotated meanwhile elsewhere
                raise NotFoundError("no such user")
            return Decision([self._pending_body], reply=self._pending_body)
        raise InvalidInputError(f"user actor cannot handle {type(command).__name__}")

    def _create(self, command: CreateUser) -> Decision:
        if self.exists:
            raise ConflictError("user already exists")
        events: list[Event] = []
        ids: list[str] = []
        if self._pending_dek is not None:
            events.append(self._pending_dek)
            ids.append(new_id())
        reg_id, email_id = new_id(), new_id()
        login_enc = self._seal(reg_id, UserRegistered.TYPE, "login", command.login)
        name_enc = self._seal(reg_id, UserRegistered.TYPE, "display_name", command.display_name)
        events.append(UserRegistered(login_enc, name_enc, self._epoch()))
        ids.append(reg_id)
        events.append(PasswordSet(command.password_hash, 1, "register"))
        ids.append(new_id())
        verify = self._verify_email(command.email, email_id)
        events.extend(verify.events)
        ids.extend(verify.event_ids)
        return Decision(events, reply=self.user_id, event_ids=ids)

    def _verify_email(self, email: str, event_id: str | None = None) -> Decision:
        eid = event_id or new_id()
        enc = self._seal(eid, EmailVerified.TYPE, "email", email)
        events: list[Event] = [EmailVerified(enc, self._epoch())]
        ids = [eid]
        if email in self.owner_emails and OWNER not in self.roles:
            events.append(RoleGranted(OWNER, "owners.emails"))
            ids.append(new_id())
        return Decision(events, reply=OWNER in self.roles or len(events) > 1, event_ids=ids)
