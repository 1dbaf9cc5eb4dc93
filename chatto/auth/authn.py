"""Who is calling: bearer tokens, session cookies, CSRF, cookie rotation.

``Authenticator.from_headers`` turns request headers into an ``AuthResult``.
A credential is accepted only if its stored auth generation equals the
user's current one, so a password change or reset rejects every older
token and cookie. A cookie with less than a quarter of its life left is
rotated: a new session id and cookie, the old session revoked.
"""

from __future__ import annotations

import time

import attrs

from actors.users.directory import UserDirectory, UserRecord
from chatto.auth.cookies import CookieCodec, read_cookie
from chatto.auth.keyring import same
from chatto.auth.sessions import Session, SessionStore
from chatto.errors import ForbiddenError


@attrs.frozen
class AuthResult:
    """The authenticated user (if any) and how they authenticated."""

    user: UserRecord | None = None
    via: str = ""  # "bearer" | "cookie" | ""
    sid: str = ""
    token: str = ""
    set_cookie: tuple[bytes, bytes] | None = None
    # The session record's key (an HMAC, not the credential), the auth
    # generation it was issued at (the directory's record changes in place,
    # so it cannot tell later) and when it expires: what an open WebSocket
    # needs to notice that its credential ended (``chatto.auth.ends``).
    key: str = ""
    generation: int = 0
    expires_ms: int = 0


ANONYMOUS = AuthResult()


class Authenticator:
    """Validates credentials against sessions and the user directory."""

    def __init__(self, sessions: SessionStore, cookies: CookieCodec, directory: UserDirectory):
        self.sessions = sessions
        self.cookies = cookies
        self._directory = directory

    def _current(self, session: Session | None) -> UserRecord | None:
        if session is None:
            return None
        user = self._directory.get(session.user_id)
        if user is None or user.generation != session.generation:
            return None
        return user

    async def bearer(self, token: str) -> AuthResult:
        session = await self.sessions.validate_bearer(token)
        user = self._current(session)
        if user is None or session is None:
            return ANONYMOUS
        return AuthResult(
            user=user,
            via="bearer",
            token=token,
            key=session.key,
            generation=session.generation,
            expires_ms=session.expires_ms,
        )

    async def cookie(self, value: str, rotate: bool = True) -> AuthResult:
        """The cookie's session; near its end (and ``rotate``) a successor session."""
        doc = self.cookies.decode(value)
        if doc is None:
            return ANONYMOUS
        try:
            uid, sid, issued = str(doc["u"]), str(doc["s"]), int(doc["i"])
        except (KeyError, TypeError, ValueError):
            return ANONYMOUS
        session = await self.sessions.validate_cookie_session(uid, sid)
        user = self._current(session)
        if user is None or session is None:
            return ANONYMOUS
        age = time.time() - issued / 1000
        if rotate and age > self.cookies.max_age * 0.75:
            new_sid = await self.sessions.issue_cookie_session(user.id, user.generation)
            # Sockets opened with the old session follow the new one.
            await self.sessions.revoke_cookie_session(user.id, sid, successor=new_sid)
            header = self.cookies.set_cookie(self.encode(user, new_sid))
            return AuthResult(
                user=user,
                via="cookie",
                sid=new_sid,
                set_cookie=header,
                generation=session.generation,
            )
        return AuthResult(
            user=user,
            via="cookie",
            sid=sid,
            key=session.key,
            generation=session.generation,
            expires_ms=session.expires_ms,
        )

    def encode(self, user: UserRecord, sid: str) -> str:
        payload = {"u": user.id, "s": sid, "g": user.generation, "i": int(time.time() * 1000)}
        return self.cookies.encode(payload)

    async def from_headers(
        self, authorization: str | None, cookie_header: str | None, rotate: bool = True
    ) -> AuthResult:
        """Bearer wins over a cookie; an invalid credential is anonymous.

        ``rotate=False`` where no Set-Cookie can reach the client (a WebSocket):
        rotating there would revoke the cookie the browser still holds.
        """
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return await self.bearer(token.strip())
            return ANONYMOUS
        value = read_cookie(cookie_header)
        if value:
            return await self.cookie(value, rotate)
        return ANONYMOUS

    def check_csrf(self, auth: AuthResult, header_value: str | None) -> None:
        """Cookie-authenticated state changes must carry the session's CSRF token."""
        if auth.via != "cookie":
            return
        expected = self.cookies.csrf_token(auth.sid)
        if not header_value or not same(header_value, expected):
            raise ForbiddenError("missing or wrong X-CSRF-Token header")

    async def new_cookie_session(self, user: UserRecord) -> tuple[str, tuple[bytes, bytes], str]:
        """(sid, Set-Cookie header, CSRF token) for a fresh browser session."""
        sid = await self.sessions.issue_cookie_session(user.id, user.generation)
        return sid, self.cookies.set_cookie(self.encode(user, sid)), self.cookies.csrf_token(sid)
