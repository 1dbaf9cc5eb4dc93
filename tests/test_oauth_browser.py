"""The OAuth login and consent pages in a real headless Chromium."""

from __future__ import annotations

import os
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest
import trio

from tests.authflow import bearer, register, viewer
from tests.browser import chromium, open_page
from tests.conftest import ConfigFactory
from tests.test_oauth import APP, oauth_server, params, pkce

PW = "a long enough password"


async def test_login_and_consent_pages_in_chromium(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    if chromium() is None:
        assert not os.environ.get("CI"), "CI must install Debian's chromium (.ci/run does)"
        pytest.skip("chromium is not installed here")
    url, sink = await oauth_server(
        nursery, make_config, CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS=APP
    )
    url = url.replace("127.0.0.1", "localhost")
    verifier, challenge = pkce()
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "browser@example.com", "browser-user", PW)
        async with open_page() as page:
            await page.load(f"{url}/oauth/authorize?{urlencode(params(challenge))}")
            assert "Sign in to Chatto" in await page.js("document.body.innerText")
            await page.js(
                "document.querySelector('input[name=login]').value='browser-user';"
                f"document.querySelector('input[name=password]').value='{PW}';"
                "document.querySelector('form').submit(); true"
            )
            await page.wait_event("Page.loadEventFired")
            text = await page.js("document.body.innerText")
            assert "app.example.com" in text and "browser-user" in text, text
            await page.js("document.querySelector('button:not([formaction])').click(); true")
            sent = await page.wait_event(
                "Network.requestWillBeSent",
                lambda p: p.get("request", {}).get("url", "").startswith(APP),
            )
    callback = urlsplit(sent["request"]["url"])
    query = parse_qs(callback.query)
    assert query["state"] == ["st-123"]
    async with httpx.AsyncClient(base_url=url, timeout=20) as c:
        r = await c.post(
            "/oauth/token",
            data={
                "grant_type": "authorization_code",
                "code": query["code"][0],
                "redirect_uri": f"{APP}/callback",
                "code_verifier": verifier,
            },
        )
        assert r.status_code == 200, r.text
        me = await viewer(c, **bearer(r.json()["access_token"]))
        assert me is not None and me["login"] == "browser-user"
