"""What every resolver receives as ``info.context``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from graphql import GraphQLResolveInfo

    from actors.user_directory import UserRecord
    from chatto.auth.authn import AuthResult
    from chatto.services import Services


@attrs.define
class RequestContext:
    """Per-request context: services, who is calling, and the transport."""

    services: Services
    auth: AuthResult
    transport: str = "http"
    # Headers a resolver wants on the HTTP response (e.g. a rotated cookie).
    response_headers: list[tuple[bytes, bytes]] = attrs.Factory(list)
    extra: dict[str, Any] = attrs.Factory(dict)

    @property
    def viewer(self) -> UserRecord | None:
        """The authenticated user, re-read so a deletion or password change shows."""
        user = self.auth.user
        if user is None:
            return None
        current = self.services.directory.get(user.id)
        if current is None or current.generation != user.generation:
            return None
        return current


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[RequestContext]
