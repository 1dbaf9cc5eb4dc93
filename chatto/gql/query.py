"""Resolvers of ``Query``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import QueryType

from chatto.errors import UnauthenticatedError

if TYPE_CHECKING:
    from chatto.gql.context import Info

query = QueryType()


@query.field("server")
def resolve_server(_obj: Any, info: Info) -> Any:
    return info.context.services


@query.field("me")
def resolve_me(_obj: Any, info: Info) -> Any:
    viewer = info.context.viewer
    if viewer is None:  # unreachable: the schema's auth wrapper runs first
        raise UnauthenticatedError("authentication required")
    return {"id": viewer.user_id, "login": viewer.login}
