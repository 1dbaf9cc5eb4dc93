"""Read model of users: decrypted profiles and the login/email indexes.

Fields are sealed in the events, so the directory unwraps each user's PII
DEK (through the KMS actor) in ``prepare`` before the projector applies a
batch synchronously. A field that cannot be decrypted (keys shredded)
stays unreadable and is left out of the indexes.

Snapshots never hold the decrypted fields: ``export_state`` writes each
field as the sealed blob it was opened from (with the event id, type and
epoch its AAD needs) and ``restore_state`` unwraps the DEKs again and
re-opens them. A deleted user's fields are gone from memory, so they are
gone from every later snapshot too.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import attrs

from actors.events import Recorded
from actors.kms.actor import Kms
from actors.users.events import (
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
from actors.users.search import UserSearch
from actors.users.status import AvatarRemoved, StatusCleared, StatusSet
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
    status_text: str = ""
    status_emoji: str = ""

    @property
    def is_owner(self) -> bool:
        return "owner" in self.roles


# A sealed PII field as its event stored it: (blob, event id, event type, epoch).
Sealed = tuple[str, str, str, int]


@attrs.define
class SealedPii:
    """Where a user's decrypted fields came from (what a snapshot keeps)."""

    login: Sealed | None = None
    display_name: Sealed | None = None
    emails: list[Sealed] = attrs.Factory(list)
    status_text: Sealed | None = None
    status_emoji: Sealed | None = None


class UserDirectory:
    """Projection of every user; in-memory indexes by login and email."""

    snapshot_name = "users"
    # 2: custom status (sealed) in each row.
    snapshot_schema = 2

    def __init__(self, kms: Kms) -> None:
        self._kms = kms
        self.users: dict[str, UserRecord] = {}
        self.by_login: dict[str, str] = {}
        self.by_email: dict[str, str] = {}
        self._keys: dict[tuple[str, int], bytes] = {}
        # (user, purpose, epoch) -> (dek_ref, kek_ref): where each key epoch lives.
        self.deks: dict[tuple[str, str, int], tuple[str, str]] = {}
        self._sealed: dict[str, SealedPii] = {}
        # Users changed since the search index last looked (None: all of them).
        self._changed: set[str] | None = None
        self.search = UserSearch(self)

    def take_changed(self) -> set[str] | None:
        """Ids of users changed since the last call (None: rebuild everything).

        One consumer: the search index (``actors.users.search``).
        """
        changed, self._changed = self._changed, set()
        return changed

    def mark_changed(self, user_id: str) -> None:
        if self._changed is not None:
            self._changed.add(user_id)

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
            await self._unwrap(rec.envelope.entity.id, event.epoch, event.dek_ref, event.kek_ref)

    async def _unwrap(self, uid: str, epoch: int, dek_ref: str, kek_ref: str) -> None:
        context = aad.dek_wrap_aad(uid, PII_PURPOSE, epoch)
        try:
            self._keys[(uid, epoch)] = await self._kms.unwrap_dek(dek_ref, kek_ref, context)
        except ChattoError as exc:
            log.info("PII key of a user is unavailable (%s)", exc.code)

    def _open(self, rec: Recorded, field: str, blob: str, epoch: int) -> str | None:
        """Open a field of ``rec``; remember where it came from if it opened."""
        env = rec.envelope
        src = (blob, env.id, env.event.TYPE, epoch)
        value = self._open_sealed(env.entity.id, field, src)
        if value is not None:
            sealed = self._sealed.setdefault(env.entity.id, SealedPii())
            if field != "email":
                setattr(sealed, field, src)
            elif value and value not in self.users[env.entity.id].emails:
                sealed.emails.append(src)
        return value

    def _open_sealed(self, uid: str, field: str, src: Sealed) -> str | None:
        blob, event_id, event_type, epoch = src
        key = self._keys.get((uid, epoch))
        if key is None:
            return None
        try:
            return open_pii(
                key,
                blob,
                event_id=event_id,
                user_id=uid,
                event_type=event_type,
                field=field,
                epoch=epoch,
            )
        except ChattoError:
            log.warning("undecryptable %s field in event %s", field, event_id)
            return None

    def apply(self, rec: Recorded) -> None:
        if rec.envelope.entity.kind != "user":
            return
        uid = rec.envelope.entity.id
        user = self.users.setdefault(uid, UserRecord(id=uid))
        self.mark_changed(uid)
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
        elif isinstance(event, AvatarRemoved):
            user.avatar = None
        elif isinstance(event, StatusSet):
            text = self._open(rec, "status_text", event.text_enc, event.pii_epoch)
            emoji = self._open(rec, "status_emoji", event.emoji_enc, event.pii_epoch)
            user.status_text, user.status_emoji = text or "", emoji or ""
        elif isinstance(event, StatusCleared):
            user.status_text = user.status_emoji = ""
            sealed = self._sealed.get(uid)
            if sealed is not None:
                sealed.status_text = sealed.status_emoji = None
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
        # The password events are erased at deletion, so a replay never sees
        # a generation: a restored snapshot must not remember one either.
        user.generation = 0
        user.avatar = None
        user.status_text = user.status_emoji = ""
        self._sealed.pop(user.id, None)
        for key in [k for k in self._keys if k[0] == user.id]:
            del self._keys[key]

    # --- snapshots ------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        """Users with their PII as sealed blobs (never decrypted), and DEK refs."""
        users = {}
        for uid, u in self.users.items():
            pii = self._sealed.get(uid, SealedPii())
            users[uid] = [
                u.registered,
                u.deleting,
                u.deleted,
                u.created_ms,
                u.password_hash,
                u.generation,
                sorted(u.roles),
                list(u.avatar) if u.avatar else None,
                list(pii.login) if pii.login else None,
                list(pii.display_name) if pii.display_name else None,
                [list(e) for e in pii.emails],
                list(pii.status_text) if pii.status_text else None,
                list(pii.status_emoji) if pii.status_emoji else None,
            ]
        deks = sorted([*k, *v] for k, v in self.deks.items())
        return {"users": users, "deks": deks}

    async def restore_state(self, state: dict[str, Any]) -> None:
        """Load sealed state, unwrap the PII keys again and re-open every field."""
        self.users, self.by_login, self.by_email, self._keys = {}, {}, {}, {}
        self._changed = None
        self.deks = {(u, p, e): (d, k) for u, p, e, d, k in state["deks"]}
        self._sealed = {}
        for uid, row in state["users"].items():
            reg, deleting, deleted, created, pw, gen, roles, avatar, login, name, emails = row[:11]
            status_text, status_emoji = row[11:13]
            self.users[uid] = UserRecord(
                uid,
                password_hash=pw,
                generation=gen,
                roles=set(roles),
                created_ms=created,
                registered=reg,
                deleting=deleting,
                deleted=deleted,
                avatar=tuple(avatar) if avatar else None,
            )
            self._sealed[uid] = SealedPii(
                _sealed(login),
                _sealed(name),
                [s for e in emails if (s := _sealed(e))],
                _sealed(status_text),
                _sealed(status_emoji),
            )
        for (uid, purpose, epoch), (dek_ref, kek_ref) in self.deks.items():
            user = self.users.get(uid)
            if purpose == PII_PURPOSE and user is not None and not user.deleted:
                await self._unwrap(uid, epoch, dek_ref, kek_ref)
        for uid, user in self.users.items():
            self._reopen(user, self._sealed[uid])

    def _reopen(self, user: UserRecord, pii: SealedPii) -> None:
        if pii.login and (login := self._open_sealed(user.id, "login", pii.login)):
            user.login = login
            self.by_login[login.lower()] = user.id
        if pii.display_name:
            user.display_name = self._open_sealed(user.id, "display_name", pii.display_name) or ""
        if pii.status_text:
            user.status_text = self._open_sealed(user.id, "status_text", pii.status_text) or ""
        if pii.status_emoji:
            user.status_emoji = self._open_sealed(user.id, "status_emoji", pii.status_emoji) or ""
        for src in pii.emails:
            email = self._open_sealed(user.id, "email", src)
            if email and email not in user.emails:
                user.emails.append(email)
                self.by_email[email] = user.id


def _sealed(value: list[Any] | None) -> Sealed | None:
    if not value:
        return None
    blob, event_id, event_type, epoch = value
    return (str(blob), str(event_id), str(event_type), int(epoch))
