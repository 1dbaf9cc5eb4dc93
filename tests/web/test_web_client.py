"""The web client in real headless Chromium: two people sign up and chat."""

from __future__ import annotations

import base64
import contextlib
from pathlib import Path

import httpx
import trio

from tests.browser import Page, open_page
from tests.conftest import ConfigFactory, start_mail_server
from tests.web.ui import click, click_text, fill, need_chromium, q, send, shot, sign_up, timeline_text

PW = "a long enough password"
# A 2x2 red PNG.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAEklEQVR4nGP4z8DAwMDAwMDAAAAMAAH8Vb2CAAAAAElFTkSuQmCC"
)


async def test_static_serving_headers(nursery: trio.Nursery, make_config: ConfigFactory) -> None:
    env = await start_mail_server(nursery, make_config)
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=env.url) as c:
            r = await c.get("/", headers={"host": "localhost:1234"})
            assert r.status_code == 200 and "text/html" in r.headers["content-type"]
            csp = r.headers["content-security-policy"]
            assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "connect-src 'self' ws://localhost:1234" in csp
            assert "unsafe-inline" not in csp
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["referrer-policy"]
            assert "<script" in r.text and "<script>" not in r.text and "style=" not in r.text
            js = await c.get("/static/js/main.js")
            assert js.headers["content-type"].startswith("text/javascript")
            again = await c.get("/static/js/main.js", headers={"if-none-match": js.headers["etag"]})
            assert again.status_code == 304
            assert (await c.get("/rooms/abc")).text == r.text  # client route
            assert (await c.get("/static/nope.js")).status_code == 404
            assert (await c.get("/static/../routes.py")).status_code == 404
            assert (await c.get("/api/nope")).status_code == 404
            css = await c.get("/static/app.css")
            assert css.headers["content-type"].startswith("text/css")
    await env.server.stop()


async def test_two_people_chat(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    need_chromium()
    env = await start_mail_server(nursery, make_config)
    url = env.url.replace("127.0.0.1", "localhost")
    image = tmp_path / "red.png"
    image.write_bytes(PNG)
    with trio.fail_after(240):
        async with open_page() as alice, open_page() as bob:
            await alice.viewport(1200, 800)
            await bob.viewport(1200, 800)
            await sign_up(alice, url, env.sink, "alice@example.com", "alice", PW)
            await sign_up(bob, url, env.sink, "bob@example.com", "bob", PW)
            # Alice creates a room, Bob finds and joins it.
            await click_text(alice, "a.nav-link", "New room")
            await fill(alice, "input[name=name]", "general")
            await fill(alice, "input[name=topic]", "Everything")
            await click(alice, "form[aria-label='Create a room'] button[type=submit]")
            await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#general'")
            await click_text(bob, "a.nav-link", "Browse rooms")
            await click(bob, "button[aria-label='Join general']")
            await bob.wait_js(f"{q('.room-head h1')}?.textContent === '#general'")
            # Live both ways.
            await send(alice, "Hello **Bob**, see https://example.com/x.")
            await bob.wait_js(f"{timeline_text()}.includes('Hello Bob, see')")
            assert await bob.js("document.querySelector('.timeline strong').textContent") == "Bob"
            assert await bob.js("document.querySelector('.timeline a').href") == "https://example.com/x"
            await send(bob, "Hi Alice!")
            await alice.wait_js(f"{timeline_text()}.includes('Hi Alice!')")
            # Typing.
            await fill(bob, ".room-main .composer-input", "I am typ")
            await alice.wait_js(f"{q('.typing')}.textContent.includes('bob is typing')")
            await bob.press("Enter")
            await alice.wait_js(f"{timeline_text()}.includes('I am typ')")
            await shot(alice, "room")
            await check_clean(alice, bob)
    await env.server.stop()


async def check_clean(*pages: Page) -> None:
    for page in pages:
        problems = await page.problems()
        assert not problems, problems


