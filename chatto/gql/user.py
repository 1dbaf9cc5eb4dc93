"""Resolvers of ``User`` (the parent value is a ``UserRecord``)."""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING

from ariadne import ObjectType

from actors.users.directory import UserRecord

if TYPE_CHECKING:
    from chatto.gql.context import Info

user_type = ObjectType("User")


@user_type.field("displayName")
def resolve_display_name(user: UserRecord, _info: Info) -> str:
    return user.display_name


@user_type.field("isOwner")
def resolve_is_owner(user: UserRecord, _info: Info) -> bool:
    return user.is_owner


@user_type.field("emails")
def resolve_emails(user: UserRecord, info: Info) -> list[str] | None:
    viewer = info.context.viewer
    return list(user.emails) if viewer is not None and viewer.id == user.id else None


@user_type.field("avatarUrl")
def resolve_avatar_url(user: UserRecord, _info: Info) -> str | None:
    return f"/assets/avatars/{user.id}?v={user.avatar[2]}" if user.avatar else None


@user_type.field("createdAt")
def resolve_created_at(user: UserRecord, _info: Info) -> str:
    return datetime.datetime.fromtimestamp(user.created_ms / 1000, tz=datetime.UTC).isoformat()
