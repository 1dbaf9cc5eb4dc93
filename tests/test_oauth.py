"""OAuth with PKCE, driven over HTTP like a browser and a frontend would."""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
import trio

from tests.authflow import bearer, register, viewer
from tests.conftest import ConfigFactory, start_mail_server
from tests.smtp_sink import SmtpSink

PW = "a long enough password"
APP = "https://app.example.com"


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = (
        base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    )
    return verifier, challenge


def params(challenge: str, redirect: str = f"{APP}/callback") -> dict[str, str]:
    return {
        "response_type": "code",
        "redirect_uri": redirect,
        "code_challenge": challenge,
        "code_challenge_method": "S256",
        "state": "st-123",
    }


async def oauth_server(
    nursery: trio.Nursery, make_config: ConfigFactory, **env: str
) -> tuple[str, SmtpSink]:
    started = await start_mail_server(nursery, make_config, **env)
    return started.url, started.sink


async def get_code(c: httpx.AsyncClient, challenge: str, login: str = "frontend-user") -> str:
    """Browser: login page, sign in, consent page, approve -> the code."""
    p = params(challenge)
    r = await c.get("/oauth/authorize", params=p)
    assert r.status_code == 200
    assert "default-src 'none'" in r.headers["content-security-policy"]
    if "<form method=post action=/oauth/login>" in r.text:  # not signed in yet
        token = re.search(r'name=form_token value="([^"]+)"', r.text)
        assert token
        form = {**p, "form_token": token.group(1), "login": login, "password": PW}
        r = await c.post("/oauth/login", data=form)
        assert r.status_code == 303 and r.headers["location"].startswith("/oauth/authorize?")
        r = await c.get(r.headers["location"])
    assert r.status_code == 200 and "app.example.com" in r.text and "Allow" in r.text
    csrf = re.search(r'name=csrf value="([^"]+)"', r.text)
    assert csrf
    r = await c.post("/oauth/consent/approve", data={**p, "csrf": csrf.group(1)})
    assert r.status_code == 302
    loc = urlsplit(r.headers["location"])
    assert f"{loc.scheme}://{loc.netloc}{loc.path}" == f"{APP}/callback"
    q = parse_qs(loc.query)
    assert q["state"] == ["st-123"]
    return q["code"][0]


async def exchange(c: httpx.AsyncClient, code: str, verifier: str) -> httpx.Response:
    return await c.post(
        "/oauth/token",
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": f"{APP}/callback",
            "code_verifier": verifier,
        },
    )


async def test_full_flow_and_every_rejection(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    url, sink = await oauth_server(
        nursery, make_config, CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS=APP
    )
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "fe@example.com", "frontend-user", PW)
            c.cookies.clear()
            verifier, challenge = pkce()
            code = await get_code(c, challenge)
            r = await exchange(c, code, verifier)
            assert r.status_code == 200, r.text
            token = r.json()
            assert token["token_type"] == "Bearer" and token["user"]["login"] == "frontend-user"
            assert (await viewer(c, **bearer(token["access_token"])))["login"] == "frontend-user"  # type: ignore[index]
            # Reused code.
            again = await exchange(c, code, verifier)
            assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
            # Wrong verifier.
            code = await get_code(c, challenge)
            wrong = await exchange(c, code, pkce()[0])
            assert wrong.status_code == 400 and wrong.json()["error"] == "invalid_grant"
            # Unlisted origin, and plain http: an error page, never a redirect.
            for bad in ("https://evil.example/cb", "http://app.example.com/cb"):
                r = await c.get("/oauth/authorize", params=params(challenge, bad))
                assert r.status_code == 400 and "location" not in r.headers
            # Missing PKCE.
            p = params(challenge)
            p["code_challenge_method"] = "plain"
            assert (await c.get("/oauth/authorize", params=p)).status_code == 400
            # Consent without the CSRF token is refused; deny redirects with an error.
            r = await c.post("/oauth/consent/approve", data=params(challenge))
            assert r.status_code == 400
            page = await c.get("/oauth/authorize", params=params(challenge))
            csrf = re.search(r'name=csrf value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
            r = await c.post("/oauth/consent/deny", data={**params(challenge), "csrf": csrf})
            assert r.status_code == 302 and "error=access_denied" in r.headers["location"]
            # A code minted before a password change is rejected.
            code = await get_code(c, challenge)
            change = await c.post(
                "/auth/change-password",
                json={"currentPassword": PW, "newPassword": "another password!"},
                headers={"x-csrf-token": csrf},
            )
            assert change.status_code == 200, change.text
            stale = await exchange(c, code, verifier)
            assert (
                stale.status_code == 400
                and "before the account changed" in stale.json()["error_description"]
            )


async def test_expired_code_and_wildcard_https_only(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    url, sink = await oauth_server(
        nursery,
        make_config,
        CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS="*",
        CHATTO_AUTH_OAUTH_CODE_TTL_SECONDS="1",
    )
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "fe2@example.com", "frontend-user", PW)
            c.cookies.clear()
            verifier, challenge = pkce()
            r = await c.get("/oauth/authorize", params=params(challenge, "http://any.example/cb"))
            assert r.status_code == 400
            code = await get_code(c, challenge)  # any https origin is accepted with *
            await trio.sleep(2.5)
            late = await exchange(c, code, verifier)
            assert late.status_code == 400 and late.json()["error"] == "invalid_grant"


@pytest.mark.parametrize("origins", ["http://app.example.com", "ftp://x"])
def test_config_refuses_non_https_redirect_origins(
    make_config: ConfigFactory, origins: str
) -> None:
    from chatto.errors import ConfigError

    with pytest.raises(ConfigError, match="oauth_redirect_origins"):
        make_config(CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS=origins)
