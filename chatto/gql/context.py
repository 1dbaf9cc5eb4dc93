"""What every resolver receives as ``info.context``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from graphql import GraphQLResolveInfo

    from chatto.services import Services


@attrs.define
class Viewer:
    """The authenticated caller (filled in by the auth layer, issue #3)."""

    user_id: str
    login: str


@attrs.define
class RequestContext:
    """Per-request context: services, the viewer if any, and the transport."""

    services: Services
    viewer: Viewer | None = None
    transport: str = "http"
    extra: dict[str, Any] = attrs.Factory(dict)


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[RequestContext]
