"""Durable events of the user entity (``evt.user.<id>.*``).

PII (login, display name, email) is only ever stored sealed with the user's
PII DEK (``*_enc`` fields, see ``chatto.crypto.pii``). The password hash is
a bcrypt hash, never a password. Audit events carry the client IP only as
a keyed hash.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from actors.events import Event

PII_PURPOSE = "user-pii"
BODY_PURPOSE = "message-body"


@attrs.frozen
class UserDEKGenerated(Event):
    """A new DEK epoch for a purpose; only references, never key bytes."""

    TYPE: ClassVar[str] = "user.dek_generated"
    purpose: str
    epoch: int
    dek_ref: str
    kek_ref: str
    alg: str
    wrap_version: int


@attrs.frozen
class UserRegistered(Event):
    TYPE: ClassVar[str] = "user.registered"
    login_enc: str
    display_name_enc: str
    pii_epoch: int


@attrs.frozen
class PasswordSet(Event):
    """A new password hash; ``auth_generation`` invalidates older credentials."""

    TYPE: ClassVar[str] = "user.password_set"
    password_hash: str
    auth_generation: int
    reason: str  # "register" | "change" | "reset"


@attrs.frozen
class EmailVerified(Event):
    TYPE: ClassVar[str] = "user.email_verified"
    email_enc: str
    pii_epoch: int


@attrs.frozen
class ProfileUpdated(Event):
    TYPE: ClassVar[str] = "user.profile_updated"
    display_name_enc: str
    pii_epoch: int


@attrs.frozen
class RoleGranted(Event):
    TYPE: ClassVar[str] = "user.role_granted"
    role: str
    reason: str


@attrs.frozen
class LoginSucceeded(Event):
    TYPE: ClassVar[str] = "user.login_succeeded"
    method: str
    ip_hash: str


@attrs.frozen
class LoginFailed(Event):
    TYPE: ClassVar[str] = "user.login_failed"
    ip_hash: str


@attrs.frozen
class CredentialRevoked(Event):
    TYPE: ClassVar[str] = "user.credential_revoked"
    kind: str  # "bearer" | "cookie"


@attrs.frozen
class UserDeletionStarted(Event):
    """From here on the account is locked; the deletion job finishes the rest."""

    TYPE: ClassVar[str] = "user.deletion_started"
    by: str


@attrs.frozen
class UserDeleted(Event):
    """Everything is shredded and removed; only this tombstone remains."""

    TYPE: ClassVar[str] = "user.deleted"


@attrs.frozen
class AvatarSet(Event):
    """The avatar object changed (bytes sealed with the body DEK of ``epoch``)."""

    TYPE: ClassVar[str] = "user.avatar_set"
    content_type: str
    epoch: int
    version: str
