"""Resolvers of ``Mutation``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType

from actors.user_directory import UserRecord
from chatto.errors import UnauthenticatedError

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
