"""Resolvers for ``setStatus``, ``clearStatus``, ``removeAvatar`` (the viewer's
own profile, ``@self``) and ``User.status``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType

from actors.users.directory import UserRecord
from chatto import profile
from chatto.gql.rooms import viewer_of

if TYPE_CHECKING:
    from chatto.gql.context import Info

profile_mutation = MutationType()
user_status = ObjectType("User")


@profile_mutation.field("setStatus")
async def resolve_set_status(
    _obj: Any, info: Info, text: str | None = "", emoji: str | None = ""
) -> UserRecord:
    services = info.context.services
    return await profile.set_status(services, viewer_of(info).id, text or "", emoji or "")


@profile_mutation.field("clearStatus")
async def resolve_clear_status(_obj: Any, info: Info) -> UserRecord:
    return await profile.clear_status(info.context.services, viewer_of(info).id)


@profile_mutation.field("removeAvatar")
async def resolve_remove_avatar(_obj: Any, info: Info) -> UserRecord:
    return await profile.remove_avatar(info.context.services, viewer_of(info).id)


@user_status.field("status")
def resolve_status(user: UserRecord, _info: Info) -> dict[str, str] | None:
    if not user.status_text and not user.status_emoji:
        return None
    return {"text": user.status_text, "emoji": user.status_emoji}
