"""Resolvers of ``Mutation``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType

from actors.users.directory import UserRecord
from chatto.auth.challenges import TokenError
from chatto.errors import InvalidInputError, NotFoundError, UnauthenticatedError
from chatto.messaging.attachments import Upload

if TYPE_CHECKING:
    from chatto.gql.context import Info

mutation = MutationType()


def _viewer(info: Info) -> UserRecord:
    viewer = info.context.viewer
    if viewer is None:
        raise UnauthenticatedError("authentication required")
    return viewer


@mutation.field("updateProfile")
async def resolve_update_profile(_obj: Any, info: Info, displayName: str) -> UserRecord:
    viewer = _viewer(info)
    return await info.context.services.accounts.update_profile(viewer.id, displayName)


@mutation.field("changePassword")
async def resolve_change_password(
    _obj: Any, info: Info, currentPassword: str, newPassword: str
) -> dict[str, Any]:
    viewer = _viewer(info)
    services, ctx = info.context.services, info.context
    await services.accounts.change_password(viewer.id, currentPassword, newPassword)
    fresh = services.directory.get(viewer.id)
    assert fresh is not None
    if ctx.auth.via == "cookie" and ctx.transport == "http":
        _sid, cookie, csrf = await services.authn.new_cookie_session(fresh)
        ctx.response_headers.append(cookie)
        return {"ok": True, "token": None, "csrfToken": csrf}
    token = await services.authn.sessions.issue_bearer(fresh.id, fresh.generation)
    return {"ok": True, "token": token, "csrfToken": None}


@mutation.field("requestAccountDeletion")
async def resolve_request_deletion(_obj: Any, info: Info) -> dict[str, Any]:
    viewer = _viewer(info)
    accounts = info.context.services.accounts
    token = await accounts.challenges.issue_deletion(viewer.id, viewer.generation)
    return {"token": token, "expiresInSeconds": accounts.challenges.code_ttl}


@mutation.field("deleteMyAccount")
async def resolve_delete_me(_obj: Any, info: Info, token: str) -> bool:
    viewer = _viewer(info)
    services = info.context.services
    user_id, generation = await services.accounts.challenges.consume_deletion(token)
    if user_id != viewer.id or generation != viewer.generation:
        raise TokenError("the confirmation token is invalid, used or expired")
    await services.deleter.request(viewer.id, viewer.id)
    return True


@mutation.field("deleteUser")
async def resolve_delete_user(_obj: Any, info: Info, userId: str) -> bool:
    viewer = _viewer(info)
    services = info.context.services
    target = services.directory.get(userId)
    if target is None:
        raise NotFoundError("no such user")
    services.permissions.require_outranks(viewer, target)
    await services.deleter.request(userId, viewer.id)
    return True


@mutation.field("setAvatar")
async def resolve_set_avatar(_obj: Any, info: Info, file: Any) -> UserRecord:
    viewer = _viewer(info)
    if not isinstance(file, Upload):
        raise InvalidInputError("file must be sent as a multipart upload")
    services = info.context.services
    await services.avatars.set(viewer.id, file)
    user = services.directory.get(viewer.id)
    assert user is not None
    return user
