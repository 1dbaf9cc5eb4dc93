"""Read model of users: decrypted profiles and the login/email indexes.

Fields are sealed in the events, so the directory unwraps each user's PII
DEK (through the KMS actor) in ``prepare`` before the projector applies a
batch synchronously. A field that cannot be decrypted (keys shredded)
stays unreadable and is left out of the indexes.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import attrs

from actors.events import Recorded
from actors.kms import Kms
from actors.user_events import (
    PII_PURPOSE,
    AvatarSet,
    EmailVerified,
    PasswordSet,
    ProfileUpdated,
    RoleGranted,
    UserDEKGenerated,
    UserDeleted,
    UserDeletionStarted,
    UserRegistered,
)
from chatto.crypto import aad
from chatto.crypto.pii import open_pii
from chatto.errors import ChattoError

log = logging.getLogger(__name__)


@attrs.define
class UserRecord:
    """What queries and authentication read about a user."""

    id: str
    login: str = ""
    display_name: str = ""
    emails: list[str] = attrs.Factory(list)
    password_hash: str = ""
    generation: int = 0
    roles: set[str] = attrs.Factory(set)
    created_ms: int = 0
    registered: bool = False
    deleting: bool = False
    deleted: bool = False
    avatar: tuple[str, int, str] | None = None  # (content type, epoch, version)

    @property
    def is_owner(self) -> bool:
        return "owner" in self.roles


class UserDirectory:
    """Projection of every user; in-memory indexes by login and email."""

    def __init__(self, kms: Kms) -> None:
        self._kms = kms
        self.users: dict[str, UserRecord] = {}
        self.by_login: dict[str, str] = {}
        self.by_email: dict[str, str] = {}
        self._keys: dict[tuple[str, int], bytes] = {}
        # (user, purpose, epoch) -> (dek_ref, kek_ref): where each key epoch lives.
        self.deks: dict[tuple[str, str, int], tuple[str, str]] = {}

    def get(self, user_id: str) -> UserRecord | None:
        """A live account (not one being or having been deleted)."""
        rec = self.users.get(user_id)
        return rec if rec is not None and rec.registered and not rec.deleting else None

    def pending_deletions(self) -> list[str]:
        return [u.id for u in self.users.values() if u.deleting and not u.deleted]

    def find_login(self, login: str) -> UserRecord | None:
        uid = self.by_login.get(login.lower())
        return self.get(uid) if uid else None

    def find_email(self, email: str) -> UserRecord | None:
        uid = self.by_email.get(email)
        return self.get(uid) if uid else None

    async def prepare(self, batch: Sequence[Recorded]) -> None:
        """Unwrap the PII DEKs that events in ``batch`` introduce."""
        for rec in batch:
            event = rec.envelope.event
            if not isinstance(event, UserDEKGenerated) or event.purpose != PII_PURPOSE:
                continue
            uid = rec.envelope.entity.id
            context = aad.dek_wrap_aad(uid, PII_PURPOSE, event.epoch)
            try:
                key = await self._kms.unwrap_dek(event.dek_ref, event.kek_ref, context)
            except ChattoError as exc:
                log.info("PII key of a user is unavailable (%s)", exc.code)
                continue
            self._keys[(uid, event.epoch)] = key

    def _open(self, rec: Recorded, field: str, blob: str, epoch: int) -> str | None:
        uid = rec.envelope.entity.id
        key = self._keys.get((uid, epoch))
        if key is None:
            return None
        try:
            return open_pii(
                key,
                blob,
                event_id=rec.envelope.id,
                user_id=uid,
                event_type=rec.envelope.event.TYPE,
                field=field,
                epoch=epoch,
            )
        except ChattoError:
            log.warning("undecryptable %s field in event seq %d", field, rec.seq)
            return None

    def apply(self, rec: Recorded) -> None:
        if rec.envelope.entity.kind != "user":
            return
        uid = rec.envelope.entity.id
        user = self.users.setdefault(uid, UserRecord(id=uid))
        event = rec.envelope.event
        if isinstance(event, UserDEKGenerated):
            self.deks[(uid, event.purpose, event.epoch)] = (event.dek_ref, event.kek_ref)
        elif isinstance(event, UserRegistered):
            user.registered, user.created_ms = True, rec.envelope.at_ms
            login = self._open(rec, "login", event.login_enc, event.pii_epoch)
            name = self._open(rec, "display_name", event.display_name_enc, event.pii_epoch)
            user.login, user.display_name = login or "", name or ""
            if login:
                self.by_login[login.lower()] = uid
        elif isinstance(event, ProfileUpdated):
            name = self._open(rec, "display_name", event.display_name_enc, event.pii_epoch)
            if name is not None:
                user.display_name = name
        elif isinstance(event, EmailVerified):
            email = self._open(rec, "email", event.email_enc, event.pii_epoch)
            if email and email not in user.emails:
                user.emails.append(email)
                self.by_email[email] = uid
        elif isinstance(event, PasswordSet):
            user.password_hash, user.generation = event.password_hash, event.auth_generation
        elif isinstance(event, RoleGranted):
            user.roles.add(event.role)
        elif isinstance(event, AvatarSet):
            user.avatar = (event.content_type, event.epoch, event.version)
        elif isinstance(event, UserDeletionStarted):
            user.deleting = True
        elif isinstance(event, UserDeleted):
            self._forget(user)

    def _forget(self, user: UserRecord) -> None:
        if self.by_login.get(user.login.lower()) == user.id:
            del self.by_login[user.login.lower()]
        for email in user.emails:
            if self.by_email.get(email) == user.id:
                del self.by_email[email]
        user.deleted, user.login, user.display_name = True, "", ""
        user.emails, user.password_hash, user.roles = [], "", set()
        user.avatar = None
        for key in [k for k in self._keys if k[0] == user.id]:
            del self._keys[key]
