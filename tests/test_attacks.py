"""Attacks from outside, over real HTTP on loopback (issue #16, items 5-12).

Each test plays the attacker against a running server on its defaults and
fails on the code before the fix it pins.
"""

from __future__ import annotations

import re

import httpx
import trio

from tests.authflow import Account, register
from tests.conftest import AuthEnv, ConfigFactory, start_mail_server
from tests.test_oauth import APP, params, pkce

PW = "a long enough password"
EVIL = "https://evil.example"


def client(env: AuthEnv) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=env.url, timeout=20)


async def accounts(c: httpx.AsyncClient, env: AuthEnv, *logins: str) -> list[Account]:
    return [await register(c, env.sink, f"{n}@example.com", n, PW) for n in logins]


# --- 5. login CSRF -------------------------------------------------------------------
async def test_cross_site_form_posts_sign_nobody_in(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(nursery, make_config, CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS=APP)
    with trio.fail_after(60):
        async with client(env) as c:
            await accounts(c, env, "mallory")
            p = params(pkce()[1])
            creds = {**p, "login": "mallory", "password": PW}
            form = {"content-type": "application/x-www-form-urlencoded"}
            # The attack: evil.example auto-submits a form to /oauth/login.
            for headers in (
                {"origin": EVIL},
                {"origin": "null"},
                {"referer": f"{EVIL}/page"},
                {},  # a browser that sends neither header: no form token either
            ):
                r = await c.post("/oauth/login", data=creds, headers={**form, **headers})
                assert r.status_code in (400, 403), (headers, r.status_code)
                assert "chatto_session" not in r.headers.get("set-cookie", ""), headers
                c.cookies.clear()
            # Even with a form token of its own (from its own visit), another
            # browser's post carries no matching nonce cookie.
            page = await c.get("/oauth/authorize", params=p)
            token = re.search(r'name=form_token value="([^"]+)"', page.text)
            assert token
            c.cookies.clear()
            r = await c.post("/oauth/login", data={**creds, "form_token": token.group(1)})
            assert r.status_code == 400
            assert "chatto_session" not in r.headers.get("set-cookie", "")
            # Consent forms refuse cross-site posts before looking at anything.
            for path in ("/oauth/consent/approve", "/oauth/consent/deny"):
                r = await c.post(path, data={**p, "csrf": "x"}, headers={"origin": EVIL})
                assert r.status_code == 403
            # /auth/* takes JSON only: a form or text/plain post is no login.
            for ctype in ("application/x-www-form-urlencoded", "text/plain"):
                r = await c.post(
                    "/auth/login",
                    content=f'{{"login": "mallory", "password": "{PW}"}}',
                    headers={"content-type": ctype, "origin": EVIL},
                )
                assert r.status_code == 400 and "set-cookie" not in r.headers
            # Our own page still signs in (same origin, token and nonce cookie).
            page = await c.get("/oauth/authorize", params=p)
            token = re.search(r'name=form_token value="([^"]+)"', page.text)
            assert token
            r = await c.post(
                "/oauth/login",
                data={**creds, "form_token": token.group(1)},
                headers={"origin": env.url},
            )
            assert r.status_code == 303 and "chatto_session" in r.headers["set-cookie"]
    await env.server.stop()
