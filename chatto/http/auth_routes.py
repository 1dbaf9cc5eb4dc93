"""``/auth/*``: registration, login/logout, passwords, email verification.

All endpoints take ``POST`` with a JSON object (``application/json`` only, so
a cross-site form cannot post here without a CORS preflight). Errors use
the same ``{"errors": [{"message", "extensions": {"code"}}]}`` shape as
GraphQL. Endpoints that act on a logged-in browser session also require the
session's ``X-CSRF-Token``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

import attrs

from actors.users.directory import UserRecord
from chatto.auth.authn import AuthResult
from chatto.auth.identity import normalize_email
from chatto.errors import ChattoError, InvalidInputError, UnauthenticatedError
from chatto.http.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    discard_body,
    header,
    header_lines,
    read_body,
    respond_chatto_error,
    respond_error,
    respond_json,
)
from chatto.ratelimit import client_ip
from chatto.services import Services

MAX_AUTH_BODY = 16 * 1024
Headers = list[tuple[bytes, bytes]]


@attrs.frozen
class AuthRequest:
    services: Services
    body: dict[str, Any]
    auth: AuthResult
    ip: str
    csrf: str | None

    def text(self, name: str, limit: int = 1024) -> str:
        value = self.body.get(name)
        if not isinstance(value, str) or not value or len(value) > limit:
            raise InvalidInputError(f"'{name}' must be a non-empty string")
        return value

    def optional_text(self, name: str, limit: int = 1024) -> str | None:
        """``name`` if the body has it (then as ``text`` checks it), else None."""
        return None if self.body.get(name) is None else self.text(name, limit)

    def require_user(self) -> UserRecord:
        if self.auth.user is None:
            raise UnauthenticatedError("authentication required")
        self.services.authn.check_csrf(self.auth, self.csrf)
        return self.auth.user


def user_json(user: UserRecord) -> dict[str, Any]:
    return {
        "id": user.id,
        "login": user.login,
        "displayName": user.display_name,
        "isOwner": user.is_owner,
    }


async def issue_session(req: AuthRequest, user: UserRecord) -> tuple[dict[str, Any], Headers]:
    """A bearer token (``mode: "token"``) or a browser cookie (default)."""
    authn = req.services.authn
    if req.body.get("mode") == "token":
        token = await authn.sessions.issue_bearer(user.id, user.generation)
        return {"user": user_json(user), "token": token, "tokenType": "Bearer"}, []
    _sid, cookie, csrf = await authn.new_cookie_session(user)
    return {"user": user_json(user), "csrfToken": csrf}, [cookie]


Handler = Callable[[AuthRequest], Awaitable[tuple[dict[str, Any], Headers]]]
SENT = {"ok": True, "message": "If the address can be used, we sent a mail to it."}


async def _limit_email(req: AuthRequest, kind: str) -> str:
    """Per-IP and per-address budgets, taken before any other work."""
    email = normalize_email(req.text("email"))
    await req.services.limiter.hit(f"{kind}_per_ip", req.ip)
    await req.services.limiter.hit(f"{kind}_per_email", email)
    return email


async def _limit_invite(req: AuthRequest) -> str | None:
    """The invite code a sign-up step carries, after the per-IP invite budget."""
    invite = req.optional_text("invite", 256)
    if invite is not None:
        await req.services.limiter.hit("invite_per_ip", req.ip)
    return invite


async def register(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    email = await _limit_email(req, "register")
    invite = await _limit_invite(req)
    await req.services.accounts.request_registration(email, invite)
    return SENT, []


async def register_verify(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    await req.services.limiter.hit("code_attempts_per_ip", req.ip)
    invite = await _limit_invite(req)
    token = await req.services.accounts.verify_registration_code(
        req.text("email"), req.text("code", 32), invite
    )
    return {"token": token}, []


async def invite_check(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    """Whether an invite link can be used now (a client shows the sign-up form)."""
    await req.services.limiter.hit("invite_per_ip", req.ip)
    await req.services.accounts.check_invite(req.text("invite", 256))
    return {"ok": True}, []


async def register_complete(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    user = await req.services.accounts.complete_registration(
        req.text("token"), req.text("login", 64), req.text("password", 4096)
    )
    return await issue_session(req, user)


async def login(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    identifier = req.text("login", 320)
    # Refused before any bcrypt work; unknown accounts get the same budget.
    await req.services.limiter.hit("login_per_ip", req.ip)
    await req.services.limiter.hit("login_per_account", identifier.strip().lower())
    user = await req.services.accounts.login(identifier, req.text("password", 4096), req.ip)
    return await issue_session(req, user)


async def logout(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    auth, authn = req.auth, req.services.authn
    if auth.via == "cookie" and auth.user is not None:
        authn.check_csrf(auth, req.csrf)
        await authn.sessions.revoke_cookie_session(auth.user.id, auth.sid)
        await req.services.accounts.record_revocation(auth.user.id, "cookie")
    elif auth.via == "bearer" and auth.user is not None:
        await authn.sessions.revoke_bearer(auth.token)
        await req.services.accounts.record_revocation(auth.user.id, "bearer")
    return {"ok": True}, [authn.cookies.clear_cookie()]


async def session(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    """The cookie session's user and CSRF token (a reloaded web client needs it).

    Only a same-origin page can read the answer: the cookie is sent and the
    answer readable only for origins trusted with credentials (CORS). Without
    a cookie session the answer is ``{"user": null}`` (200: a signed-out
    page load is not an error).
    """
    auth = req.auth
    if auth.user is None or auth.via != "cookie":
        return {"user": None, "csrfToken": None}, []
    csrf = req.services.authn.cookies.csrf_token(auth.sid)
    return {"user": user_json(auth.user), "csrfToken": csrf}, []


async def logout_all(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    """End every session and token of the signed-in user, this one included."""
    user = req.require_user()
    await req.services.authn.sessions.revoke_all(user.id)
    await req.services.accounts.record_revocation(user.id, "all")
    return {"ok": True}, [req.services.authn.cookies.clear_cookie()]


async def revoke_token(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    sessions = req.services.authn.sessions
    # Anonymous by design (a client may lose everything but the token), so
    # bounded per address like the other pre-auth endpoints.
    await req.services.limiter.hit("revoke_per_ip", req.ip)
    token = req.text("token", 256)
    session = await sessions.validate_bearer(token)
    await sessions.revoke_bearer(token)
    if session is not None and req.services.directory.get(session.user_id) is not None:
        await req.services.accounts.record_revocation(session.user_id, "bearer")
    return {"ok": True}, []


async def change_password(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    user = req.require_user()
    accounts = req.services.accounts
    await accounts.change_password(
        user.id, req.text("currentPassword", 4096), req.text("newPassword", 4096)
    )
    fresh = accounts.directory.get(user.id)
    assert fresh is not None
    if req.auth.via == "bearer":
        req.body["mode"] = "token"
    return await issue_session(req, fresh)


async def forgot_password(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    await req.services.accounts.forgot_password(await _limit_email(req, "reset"))
    return SENT, []


async def reset_password(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    await req.services.accounts.reset_password(req.text("token"), req.text("password", 4096))
    return {"ok": True}, []


async def email_request(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    user = req.require_user()
    await req.services.accounts.request_email_code(user.id, req.text("email"))
    return SENT, []


async def email_confirm(req: AuthRequest) -> tuple[dict[str, Any], Headers]:
    user = req.require_user()
    await req.services.limiter.hit("code_attempts_per_ip", req.ip)
    updated = await req.services.accounts.confirm_email_code(
        user.id, req.text("email"), req.text("code", 32)
    )
    return {"user": user_json(updated), "emails": updated.emails}, []


ROUTES: dict[str, Handler] = {
    "/auth/register": register,
    "/auth/register/verify-code": register_verify,
    "/auth/register/complete": register_complete,
    "/auth/invite": invite_check,
    "/auth/login": login,
    "/auth/logout": logout,
    "/auth/logout-all": logout_all,
    "/auth/session": session,
    "/auth/revoke-token": revoke_token,
    "/auth/change-password": change_password,
    "/auth/forgot-password": forgot_password,
    "/auth/reset-password": reset_password,
    "/auth/verify-email/request-code": email_request,
    "/auth/verify-email/confirm-code": email_confirm,
}


def request_ip(scope: Scope, services: Services) -> str:
    """The client's address (X-Forwarded-For only from trusted proxies).

    Every X-Forwarded-For line counts, joined in order: a proxy that adds
    its own line (HAProxy) puts the real address in the last one, while the
    first is whatever the client sent.
    """
    client = scope.get("client")
    peer = str(client[0]) if client else ""
    trusted = services.config.webserver.trusted_proxies
    forwarded = ", ".join(header_lines(scope, b"x-forwarded-for")) or None
    return client_ip(peer, forwarded, trusted)


async def _read_json(scope: Scope, receive: Receive) -> dict[str, Any]:
    ctype = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise InvalidInputError("send application/json")
    try:
        doc = json.loads(await read_body(scope, receive, MAX_AUTH_BODY) or b"{}")
    except ValueError as exc:
        raise InvalidInputError("request body is not valid JSON") from exc
    if not isinstance(doc, dict):
        raise InvalidInputError("request body must be a JSON object")
    return doc


async def handle_auth(scope: Scope, receive: Receive, send: Send, services: Services) -> None:
    handler = ROUTES.get(scope["path"])
    if handler is None:
        await respond_error(send, 404, "NOT_FOUND", "no such route")
        return
    if scope["method"] != "POST":
        await respond_error(send, 405, "METHOD_NOT_ALLOWED", "use POST")
        return
    try:
        body = await _read_json(scope, receive)
        auth = await services.authn.from_headers(
            header(scope, b"authorization"), header(scope, b"cookie")
        )
        ip = request_ip(scope, services)
        req = AuthRequest(services, body, auth, ip, header(scope, b"x-csrf-token"))
        doc, headers = await handler(req)
    except BodyTooLarge:
        await discard_body(receive)
        await respond_error(send, 413, "PAYLOAD_TOO_LARGE", "request body is too large")
        return
    except ChattoError as exc:
        await respond_chatto_error(send, exc)
        return
    if auth.set_cookie is not None and not headers:
        headers = [auth.set_cookie]
    await respond_json(send, 200, doc, headers)
