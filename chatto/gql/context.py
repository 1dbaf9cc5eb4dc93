"""What every resolver receives as ``info.context``."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from graphql import GraphQLResolveInfo

    from actors.users.directory import UserRecord
    from chatto.auth.authn import AuthResult
    from chatto.auth.ends import Credential
    from chatto.services import Services


# A subscription event dict carrying this key may share its executed result
# with every subscriber of the same event (see chatto/gql/fanout.py); the
# value is the object the hub delivered, identical for all of them.
SHARE = "_share"
# A subscription event dict carrying this key is the stream's last word to a
# viewer whose credential just ended (SESSION_TERMINATED): its fields may
# resolve although the viewer no longer passes the authentication gate.
FAREWELL = "_farewell"


class NotReady(Exception):
    """A resolver would have to wait, and the execution must not (``sync_only``)."""


@attrs.define
class RequestContext:
    """Per-request context: services, who is calling, and the transport."""

    services: Services
    _auth: AuthResult
    transport: str = "http"
    # Headers a resolver wants on the HTTP response (e.g. a rotated cookie).
    response_headers: list[tuple[bytes, bytes]] = attrs.Factory(list)
    extra: dict[str, Any] = attrs.Factory(dict)
    # How often anything asked who the caller is: a subscription event whose
    # execution left it unchanged did not depend on the viewer, so its result
    # may be shared with every subscriber of the same event (gql/fanout.py).
    auth_reads: int = 0
    # A WebSocket's credential: once it has ended, nobody is authenticated here.
    credential: Credential | None = None
    # Set while a live event is rendered inside the publisher's call (the
    # fast lane, gql/fanout.py): a resolver that would have to wait raises
    # ``NotReady`` instead, and the event takes the usual path.
    sync_only: bool = False

    @property
    def auth(self) -> AuthResult:
        self.auth_reads += 1
        return self._auth

    @auth.setter
    def auth(self, value: AuthResult) -> None:
        self._auth = value

    @property
    def viewer(self) -> UserRecord | None:
        """The authenticated user, re-read so a deletion or password change shows."""
        self.auth_reads += 1
        return self._current()

    def is_authenticated(self) -> bool:
        """Whether the caller is a current user; a gate, not a read of who it is."""
        return self._current() is not None

    def _current(self) -> UserRecord | None:
        user = self._auth.user
        if user is None:
            return None
        current = self.services.directory.get(user.id)
        if current is None or current.generation != user.generation:
            return None
        cred = self.credential
        # ``user`` is the directory's own record, changed in place: the
        # credential remembers the generation it was issued at.
        if cred is not None and (cred.ended or cred.generation != current.generation):
            return None
        return current


if TYPE_CHECKING:
    Info = GraphQLResolveInfo[RequestContext]
