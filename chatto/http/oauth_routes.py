"""``/oauth/*``: authorize (login and consent pages), approve/deny, token.

The pages are plain server-rendered HTML (every value escaped) with a
strict Content-Security-Policy. Their forms are posted only from our own
pages (``formguard.same_origin``); the consent form carries the session's
CSRF token and the login form a pre-session form token, so no other site
can sign a browser into an account or approve a grant for it. Redirects
only ever go to a redirect URI that passed ``check_authorize``.
"""

from __future__ import annotations

import html
import json
from typing import Any
from urllib.parse import parse_qsl, urlencode

from chatto.auth.authn import AuthResult
from chatto.auth.cookies import read_cookie
from chatto.auth.oauth import AuthorizeRequest, OAuthError, check_authorize
from chatto.errors import ChattoError
from chatto.http.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    discard_body,
    header,
    read_body,
    respond,
    respond_json,
)
from chatto.http.auth_routes import request_ip
from chatto.http.formguard import FormTokens, same_origin
from chatto.services import Services

PARAMS = ("response_type", "redirect_uri", "code_challenge", "code_challenge_method", "state")
STYLE = (
    "body{font:16px system-ui;max-width:28rem;margin:4rem auto;padding:0 1rem}"
    "input,button{font:inherit;padding:.4rem;margin:.2rem 0;width:100%}"
)


def _page(title: str, body: str) -> bytes:
    return (
        f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    ).encode()


def _hidden(params: dict[str, str]) -> str:
    return "".join(
        f'<input type=hidden name="{k}" value="{html.escape(params.get(k, ""))}">' for k in PARAMS
    )


async def _html(
    send: Send,
    status: int,
    page: bytes,
    form_origin: str = "",
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    csp = f"default-src 'none'; style-src 'unsafe-inline'; form-action 'self' {form_origin}"
    headers = [(b"content-security-policy", csp.strip().encode()), *(extra or [])]
    await respond(send, status, page, b"text/html; charset=utf-8", headers)


async def _redirect(
    send: Send, location: str, extra: list[tuple[bytes, bytes]] | None = None, status: int = 302
) -> None:
    await respond(
        send, status, b"", b"text/plain", [(b"location", location.encode()), *(extra or [])]
    )


def _with_query(uri: str, params: dict[str, str]) -> str:
    return uri + ("&" if "?" in uri else "?") + urlencode({k: v for k, v in params.items() if v})


async def _form(scope: Scope, receive: Receive) -> dict[str, str]:
    raw = await read_body(scope, receive, 16 * 1024)
    ctype = (header(scope, b"content-type") or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        doc = json.loads(raw or b"{}")
        return {str(k): str(v) for k, v in doc.items()} if isinstance(doc, dict) else {}
    return dict(parse_qsl(raw.decode("utf-8", errors="replace")))


async def _session(scope: Scope, services: Services) -> AuthResult:
    value = read_cookie(header(scope, b"cookie"))
    if not value:
        return AuthResult()
    return await services.authn.cookie(value)


def _form_tokens(services: Services) -> FormTokens:
    return FormTokens(services.accounts.keyring, services.authn.cookies.secure)


async def _login_form(
    scope: Scope, send: Send, services: Services, params: dict[str, str], status: int, error: str
) -> None:
    field, cookie = _form_tokens(services).issue(scope)
    await _html(send, status, _login_page(params, field, error), extra=[cookie] if cookie else [])


def _login_page(params: dict[str, str], form_token: str, error: str = "") -> bytes:
    note = f"<p role=alert>{html.escape(error)}</p>" if error else ""
    return _page(
        "Sign in",
        f"<h1>Sign in to Chatto</h1>{note}<form method=post action=/oauth/login>"
        f'{_hidden(params)}<input type=hidden name=form_token value="{form_token}">'
        "<label>Login or email<input name=login required></label>"
        "<label>Password<input name=password type=password required></label>"
        "<button>Sign in</button></form>",
    )


def _consent_page(req: AuthorizeRequest, params: dict[str, str], login: str, csrf: str) -> bytes:
    origin = html.escape(req.origin)
    return _page(
        "Allow access?",
        f"<h1>Allow access?</h1><p><b>{origin}</b> wants to use "
        f"your Chatto account <b>{html.escape(login)}</b>: read and send messages as you."
        "</p><form method=post action=/oauth/consent/approve>"
        f'{_hidden(params)}<input type=hidden name=csrf value="{html.escape(csrf)}">'
        "<button>Allow</button><button formaction=/oauth/consent/deny>Deny</button>"
        "</form>",
    )


async def authorize(scope: Scope, send: Send, services: Services, params: dict[str, str]) -> None:
    try:
        req = check_authorize(params, services.config.webserver.oauth_redirect_origins)
    except OAuthError as exc:
        # Never redirect to an untrusted URI: show the error here.
        await _html(
            send,
            400,
            _page("Cannot continue", f"<h1>Cannot continue</h1><p>{html.escape(exc.message)}</p>"),
        )
        return
    auth = await _session(scope, services)
    if auth.user is None:
        await _login_form(scope, send, services, params, 200, "")
        return
    csrf = services.authn.cookies.csrf_token(auth.sid)
    await _html(send, 200, _consent_page(req, params, auth.user.login, csrf), req.origin)


async def login(scope: Scope, send: Send, services: Services, form: dict[str, str]) -> None:
    params = {k: form.get(k, "") for k in PARAMS}
    try:
        check_authorize(params, services.config.webserver.oauth_redirect_origins)
        if not _form_tokens(services).check(scope, form.get("form_token")):
            # Checked before the password: a forged post learns nothing either.
            raise OAuthError("invalid_request", "the sign-in form expired; please sign in again")
        ip = request_ip(scope, services)
        identifier = form.get("login", "")[:320]
        await services.limiter.hit("login_per_ip", ip)
        await services.limiter.hit("login_per_account", identifier.strip().lower())
        user = await services.accounts.login(identifier, form.get("password", "")[:4096], ip)
    except ChattoError as exc:
        status = exc.http_status if exc.http_status < 500 else 400
        await _login_form(scope, send, services, params, status, exc.message)
        return
    _sid, cookie, _csrf = await services.authn.new_cookie_session(user)
    await _redirect(send, "/oauth/authorize?" + urlencode(params), [cookie], status=303)


async def decide(
    scope: Scope, send: Send, services: Services, form: dict[str, str], approve: bool
) -> None:
    params = {k: form.get(k, "") for k in PARAMS}
    try:
        req = check_authorize(params, services.config.webserver.oauth_redirect_origins)
        auth = await _session(scope, services)
        if auth.user is None:
            raise OAuthError("access_denied", "sign in first")
        services.authn.check_csrf(auth, form.get("csrf"))
    except ChattoError as exc:
        await _html(send, 400, _page("Cannot continue", f"<p>{html.escape(exc.message)}</p>"))
        return
    assert auth.user is not None
    if not approve:
        await _redirect(
            send, _with_query(req.redirect_uri, {"error": "access_denied", "state": req.state})
        )
        return
    code = await services.grants.mint(auth.user.id, auth.user.generation, req)
    await _redirect(send, _with_query(req.redirect_uri, {"code": code, "state": req.state}))


async def token(send: Send, services: Services, form: dict[str, str]) -> None:
    try:
        if form.get("grant_type") != "authorization_code":
            raise OAuthError("unsupported_grant_type", "grant_type must be authorization_code")
        user_id, generation = await services.grants.redeem(
            form.get("code", ""), form.get("redirect_uri", ""), form.get("code_verifier", "")
        )
        user = services.directory.get(user_id)
        if user is None or user.generation != generation:
            raise OAuthError("invalid_grant", "the code was issued before the account changed")
    except OAuthError as exc:
        await respond_json(send, 400, {"error": exc.error, "error_description": exc.message})
        return
    bearer = await services.authn.sessions.issue_bearer(user.id, user.generation)
    await respond_json(
        send,
        200,
        {
            "access_token": bearer,
            "token_type": "Bearer",
            "user": {"id": user.id, "login": user.login},
        },
    )


async def handle_oauth(scope: Scope, receive: Receive, send: Send, services: Services) -> None:
    path, method = scope["path"], scope["method"]
    query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
    posts: dict[str, Any] = {
        "/oauth/login": lambda f: login(scope, send, services, f),
        "/oauth/consent/approve": lambda f: decide(scope, send, services, f, True),
        "/oauth/consent/deny": lambda f: decide(scope, send, services, f, False),
        "/oauth/token": lambda f: token(send, services, f),
    }
    if path == "/oauth/authorize" and method == "GET":
        await authorize(scope, send, services, query)
    elif path in posts and method == "POST":
        if path != "/oauth/token" and not same_origin(scope, services.config.webserver.url):
            # The token endpoint takes no cookie (PKCE): only the forms need this.
            await discard_body(receive)
            await _html(send, 403, _page("Cannot continue", "<p>cross-site form refused</p>"))
            return
        try:
            form = await _form(scope, receive)
        except (BodyTooLarge, ValueError):
            await discard_body(receive)
            await respond_json(send, 400, {"error": "invalid_request"})
            return
        await posts[path](form)
    else:
        await respond_json(send, 404, {"error": "not_found"})
