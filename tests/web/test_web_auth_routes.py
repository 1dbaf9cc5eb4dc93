"""The two /auth endpoints the web client added: session and logout-all."""

from __future__ import annotations

import httpx
import trio

from tests.authflow import bearer, cookie_headers, login_token, register, viewer
from tests.conftest import AuthEnv

PW = "a long enough password"


async def test_session_reports_the_csrf_token_and_logout_all_ends_everything(
    auth_env: AuthEnv,
) -> None:
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            acct = await register(c, auth_env.sink, "web@example.com", "webby", PW)
            # Signed out: 200 with no user (a page load is not an error).
            r = await c.post("/auth/session", json={})
            assert r.status_code == 200 and r.json() == {"user": None, "csrfToken": None}
            # A bearer token is not a browser session: no CSRF token for it.
            token = await login_token(c, "webby", PW)
            r = await c.post("/auth/session", json={}, headers=bearer(token))
            assert r.json()["user"] is None
            # The cookie session gets its own CSRF token back (the one login gave).
            r = await c.post("/auth/session", json={}, headers=cookie_headers(acct, csrf=False))
            assert r.status_code == 200
            assert r.json()["csrfToken"] == acct.csrf and r.json()["user"]["login"] == "webby"
            # A cross-site page cannot read it: its Origin gets no cookie.
            evil = {**cookie_headers(acct, csrf=False), "origin": "https://evil.example"}
            r = await c.post("/auth/session", json={}, headers=evil)
            assert r.json()["user"] is None
            assert "access-control-allow-origin" not in r.headers
            # logout-all needs the CSRF token, then ends the cookie and the token.
            r = await c.post("/auth/logout-all", json={}, headers=cookie_headers(acct, csrf=False))
            assert r.status_code == 403
            r = await c.post("/auth/logout-all", json={}, headers=cookie_headers(acct))
            assert r.status_code == 200
            assert await viewer(c, **cookie_headers(acct)) is None
            assert await viewer(c, **bearer(token)) is None
