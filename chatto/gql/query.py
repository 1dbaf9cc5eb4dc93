"""Resolvers of ``Query``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import QueryType

from actors.users.directory import UserRecord
from chatto.errors import UnauthenticatedError

if TYPE_CHECKING:
    from chatto.gql.context import Info

query = QueryType()


@query.field("server")
def resolve_server(_obj: Any, info: Info) -> Any:
    return info.context.services


@query.field("viewer")
def resolve_viewer(_obj: Any, info: Info) -> UserRecord:
    viewer = info.context.viewer
    if viewer is None:  # the schema's auth wrapper normally answers first
        raise UnauthenticatedError("authentication required")
    return viewer


@query.field("user")
def resolve_user(_obj: Any, info: Info, id: str) -> UserRecord | None:
    return info.context.services.directory.get(id)


@query.field("userByLogin")
def resolve_user_by_login(_obj: Any, info: Info, login: str) -> UserRecord | None:
    return info.context.services.directory.find_login(login)
