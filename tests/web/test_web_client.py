"""The web client in real headless Chromium: two people sign up and chat."""

from __future__ import annotations

import json
import zlib
from pathlib import Path
from typing import Any

import httpx
import trio

from tests.browser import Page, open_page
from tests.conftest import ConfigFactory, start_mail_server
from tests.web.ui import (
    click,
    click_text,
    fill,
    need_chromium,
    q,
    send,
    shot,
    sign_up,
    timeline_text,
)

PW = "a long enough password"
JS = Path(__file__).parents[2] / "chatto" / "web" / "static" / "js"


def png(width: int, height: int, rgb: tuple[int, int, int]) -> bytes:
    """A solid-colour PNG, big enough to show in the screenshots."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data).to_bytes(4, "big")
        return len(data).to_bytes(4, "big") + kind + data + crc

    head = width.to_bytes(4, "big") + height.to_bytes(4, "big") + bytes([8, 2, 0, 0, 0])
    rows = b"".join(b"\x00" + bytes(rgb) * width for _ in range(height))
    idat = chunk(b"IDAT", zlib.compress(rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", head) + idat + chunk(b"IEND", b"")


PNG = png(160, 90, (214, 48, 49))


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
            assert (await c.get("/nope")).status_code == 404
            assert (await c.get("/reset-password?token=x")).text == r.text
            for route in ("/invite", "/notifications", "/threads"):
                assert (await c.get(route)).text == r.text
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
            await fill(alice, "input[name=name]", "lounge")
            await fill(alice, "input[name=topic]", "Everything")
            await click(alice, "form[aria-label='Create a room'] button[type=submit]")
            await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")
            await click_text(bob, "a.nav-link", "Browse rooms")
            await click(bob, "button[aria-label='Join lounge']")
            await bob.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")
            # Live both ways.
            await send(alice, "Hello **Bob**, see https://example.com/x.")
            await bob.wait_js(f"{timeline_text()}.includes('Hello Bob, see')")
            assert await bob.js("document.querySelector('.timeline strong').textContent") == "Bob"
            assert (
                await bob.js("document.querySelector('.timeline a').href")
                == "https://example.com/x"
            )
            await send(bob, "Hi Alice!")
            await alice.wait_js(f"{timeline_text()}.includes('Hi Alice!')")
            # Both posts went over the live socket, not HTTP (issue #21 item 3).
            posts = env.server.running.services.metrics.graphql_operations
            assert posts.labels("ws", "mutation", "postMessage", "ok")._value.get() >= 2
            assert posts.labels("http", "mutation", "postMessage", "ok")._value.get() == 0
            # Typing.
            await fill(bob, ".room-main .composer-input", "I am typ")
            await alice.wait_js(f"{q('.typing')}.textContent.includes('bob is typing')")
            await bob.press("Enter")
            await alice.wait_js(f"{timeline_text()}.includes('I am typ')")
            await unread_badges(alice, bob)
            await direct_message(alice, bob)
            await room_settings(alice, bob)
            await react_and_thread(alice, bob)
            await attach_edit_retract(alice, bob, image)
            await drop_without_loss(env.server.running.services, alice, bob)
            await xss_stays_inert(alice, bob)
            await shot(alice, "room")
            await alice.call(
                "Emulation.setEmulatedMedia",
                features=[{"name": "prefers-color-scheme", "value": "dark"}],
            )
            await shot(alice, "room-dark")
            await alice.viewport(390, 780, mobile=True)
            assert await alice.js("document.documentElement.scrollWidth <= 390")
            await shot(alice, "phone-room")
            await alice.viewport(1200, 800)
            # Every module parses and loads (the lazy views too).
            modules = json.dumps([f"/static/js/{p.name}" for p in JS.iterdir()])
            assert await alice.js(f"Promise.all({modules}.map((m) => import(m))).then(() => true)")
            await check_clean(alice, bob)
            await leave_room(bob)
            await delete_account(alice, bob)
            await check_clean(alice, bob)
    await env.server.stop()


def msg_with(text: str) -> str:
    """The .msg article whose text contains ``text``."""
    return f"[...document.querySelectorAll('.room-main .msg')].find((m) => m.innerText.includes({json.dumps(text)}))"


async def act_on(page: Page, text: str, label: str) -> None:
    """Click a message's action button (by its label)."""
    sel = json.dumps(f"[aria-label='{label}']")
    await page.wait_js(f"!!{msg_with(text)}")
    await page.js(f"{msg_with(text)}.querySelector({sel}).click(); true")


async def unread_badges(alice: Page, bob: Page) -> None:
    """A message in another room: a sidebar badge and the count in the title."""
    await click_text(alice, "a.room-link", "general")
    await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#general'")
    await send(alice, "Over here")
    badge = "[...document.querySelectorAll('a.room-link')].find((a) => a.textContent.includes('general'))"
    await bob.wait_js(f"{badge}?.querySelector('.badge')?.textContent === '1'")
    assert (await bob.js("document.title")).startswith("(1) ")
    await click_text(bob, "a.room-link", "general")
    await bob.wait_js(f"!{badge}.querySelector('.badge') && !document.title.startsWith('(')")
    await click_text(bob, "a.room-link", "lounge")
    await click_text(alice, "a.room-link", "lounge")
    await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")


async def direct_message(alice: Page, bob: Page) -> None:
    """Alice starts a DM from the member list; Bob gets it live, with a presence dot."""
    await click(alice, "button[aria-label='Show members']")
    await click(alice, "button[aria-label='Message bob directly']")
    await alice.wait_js(f"{q('.room-head h1')}?.textContent === 'bob'")
    # Bob's tab is in the background, notifications allowed: a stand-in for
    # the browser's Notification records what the client shows.
    await bob.js(
        "window.__shown = []; Object.defineProperty(document, 'hidden', {value: true, configurable: true});"
        "window.Notification = class { static permission = 'granted';"
        " constructor(title, opts) { window.__shown.push([title, opts.body]); } close() {} }; true"
    )
    await send(alice, "Just between us")
    await bob.wait_js("window.__shown.length > 0")
    assert await bob.js("window.__shown[0]") == ["alice", "Just between us"]
    await bob.js("delete document.hidden; true")
    dm = (
        "[...document.querySelectorAll('a.room-link')].find((a) => a.textContent.includes('alice'))"
    )
    await bob.wait_js(f"!!{dm}")
    await bob.wait_js(f"{dm}.querySelector('.dot').getAttribute('aria-label') === 'online'")
    await bob.js(f"{dm}.click(); true")
    await bob.wait_js(f"{timeline_text()}.includes('Just between us')")
    await send(bob, "Sure")
    await alice.wait_js(f"{timeline_text()}.includes('Sure')")
    await click_text(bob, "a.room-link", "lounge")
    await click_text(alice, "a.room-link", "lounge")
    await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")
    await bob.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")


async def room_settings(alice: Page, bob: Page) -> None:
    """The room's creator may manage it (viewerPermissions in the room); Bob may not."""
    visible = "[...document.querySelectorAll('.room-head button')].some((b) => !b.hidden && b.textContent === 'Settings')"
    await alice.wait_js(visible)
    await click_text(alice, ".room-head button", "Settings")
    await fill(alice, "input[name=roomTopic]", "Chat about anything")
    await click_text(alice, "section[aria-label='Room settings'] button", "Save")
    await bob.wait_js(f"{q('.room-head .topic')}.textContent === 'Chat about anything'")
    assert not await bob.js(visible)
    await click_text(alice, ".room-head button", "Settings")  # closes the panel


async def react_and_thread(alice: Page, bob: Page) -> None:
    await act_on(alice, "Hi Alice!", "Add reaction")
    await click(alice, ".picker button[aria-label='React with 👍']")
    await bob.wait_js(
        f"{msg_with('Hi Alice!')}?.querySelector('.reaction')?.textContent === '👍 1'"
    )
    # Bob replies in a thread under Alice's first message; Alice sees the count, opens it.
    # A reply (not a thread): quoted above the answer, on both sides.
    await act_on(bob, "Hi Alice!", "Reply")
    await send(bob, "Replying to myself")
    await alice.wait_js(
        f"{msg_with('Replying to myself')}?.querySelector('.reply-ref')?.textContent.includes('bob: Hi Alice!')"
    )
    await act_on(bob, "Hello Bob", "Reply in thread")
    await send(bob, "A thread reply", ".thread .composer-input")
    await bob.wait_js(f"{timeline_text('.thread .timeline')}.includes('A thread reply')")
    await alice.wait_js(
        f"{msg_with('Hello Bob')}?.querySelector('.replies')?.textContent === '1 reply'"
    )
    await alice.js(f"{msg_with('Hello Bob')}.querySelector('.replies').click(); true")
    await alice.wait_js(f"{timeline_text('.thread .timeline')}.includes('A thread reply')")
    await shot(alice, "thread")
    await click(alice, ".thread [aria-label='Close thread']")


async def attach_edit_retract(alice: Page, bob: Page, image: Path) -> None:
    doc = await alice.call("DOM.getDocument")
    node = await alice.call(
        "DOM.querySelector", nodeId=doc["root"]["nodeId"], selector=".room-main input[type=file]"
    )
    await alice.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(image)])
    await alice.wait_js(f"{q('.room-main .uploads li.done')} !== null")
    await send(alice, "A red square")
    await bob.wait_js(f"{msg_with('A red square')}?.querySelector('img')?.naturalWidth === 160")
    # Up in the empty composer edits the last message.
    await alice.js(f"{q('.room-main .composer-input')}.focus(); true")
    await alice.press("ArrowUp")
    await alice.wait_js(f"{q('.room-main .composer-input')}.value === 'A red square'")
    await fill(alice, ".room-main .composer-input", "A red square (small)")
    await alice.press("Enter")
    await bob.wait_js(f"{msg_with('A red square (small)')}?.querySelector('.edited') != null")
    await trio.sleep(0.5)  # every live echo of the edit has arrived
    for page in (alice, bob):
        assert (
            await page.js(f"{msg_with('A red square (small)')}.querySelector('img')?.naturalWidth")
            == 160
        )
    await alice.js("window.confirm = () => true; true")
    await send(alice, "Oops, wrong room")
    await bob.wait_js(f"!!{msg_with('Oops, wrong room')}")
    await act_on(alice, "Oops, wrong room", "Retract message")
    await bob.wait_js(f"!{msg_with('Oops, wrong room')} && {timeline_text()}.includes('retracted')")


async def drop_without_loss(services: Any, alice: Page, bob: Page) -> None:
    """The server drops Bob's live stream; what Alice says meanwhile still arrives, once."""
    bob_id = await bob.js("window.chatto.store.state.me.id")
    # Hold Bob's reconnect back so messages land while he is away.
    await bob.js(
        "window.__realWS = window.WebSocket; window.WebSocket = function () { throw new Error('held'); }; true"
    )
    subs = list(services.hub._by_topic.get(f"user.{bob_id}", ()))
    assert subs
    for sub in subs:
        sub.dropped = True
        sub.send.close()
    await bob.wait_js("window.chatto.store.state.conn === 'offline'")
    for i in range(3):
        await send(alice, f"While you were away {i}")
    await bob.js("window.WebSocket = window.__realWS; window.chatto.store.reconnectNow(); true")
    await bob.wait_js("window.chatto.store.state.conn === 'online'")
    for i in range(3):
        await bob.wait_js(f"{timeline_text()}.includes('While you were away {i}')")
    count = await bob.js(f"{timeline_text()}.split('While you were away').length - 1")
    assert count == 3


async def xss_stays_inert(alice: Page, bob: Page) -> None:
    # The server refuses bidi and zero-width characters in names (the client
    # strips them too, and isolates every name in <bdi>); markup stays text.
    rename = "mutation($n: String!) { updateProfile(displayName: $n) { id } }"
    bidi = json.dumps({"n": "x\u202egnp.exe"})
    refused = await bob.js(
        f"window.chatto.store.gql({json.dumps(rename)}, {bidi}).then(() => 'stored', (e) => e.code)"
    )
    assert refused == "BAD_USER_INPUT"
    evil = {"n": "<img src=x onerror=window.__xss=1>"}
    await bob.js(
        f"window.chatto.store.gql({json.dumps(rename)}, {json.dumps(evil)}).then(() => true)"
    )
    for body in (
        "<img src=x onerror=window.__xss=1>",
        "<script>window.__xss=1</script>",
        "[click](javascript:window.__xss=1) javascript:window.__xss=1",
        "\u202egnp.exe `<b>code</b>` and\n> <i>quote</i>",
    ):
        await send(bob, body)
    await alice.wait_js(f"{timeline_text()}.includes('<i>quote</i>')")
    assert await alice.js("window.__xss") is None
    assert (
        await alice.js(
            "document.querySelector('.timeline img[src=x], .timeline script, .timeline b, .timeline i')"
        )
        is None
    )
    hrefs = await alice.js("[...document.querySelectorAll('.timeline a')].map((a) => a.href)")
    assert all(h.startswith(("https:", "http:")) for h in hrefs), hrefs
    # The name is shown as text, isolated, without its bidi and zero-width tricks.
    await alice.wait_js(f"{msg_with('wrong room')} || true")
    names = await alice.js(
        "[...document.querySelectorAll('.timeline bdi.author')].map((b) => b.textContent)"
    )
    assert "<img src=x onerror=window.__xss=1>" in names, names
    # A bidi override in a body does not reverse what follows it.
    assert not await alice.js(f"{timeline_text()}.includes('\\u202e')")
    assert await alice.js(f"{timeline_text()}.includes('gnp.exe')")
    assert await alice.js("document.querySelector('.timeline bdi.author').tagName") == "BDI"


async def leave_room(bob: Page) -> None:
    await click_text(bob, "a.room-link", "general")
    await bob.wait_js(f"{q('.room-head h1')}?.textContent === '#general'")
    await bob.js("window.confirm = () => true; true")
    await click_text(bob, ".room-head button", "Leave")
    general = "[...document.querySelectorAll('a.room-link')].some((a) => a.textContent.includes('general'))"
    await bob.wait_js(f"!{general}")
    await click_text(bob, "a.room-link", "lounge")
    await bob.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")


async def delete_account(alice: Page, bob: Page) -> None:
    """Bob deletes his account from the Me page; Alice sees "Deleted User"."""
    await click_text(bob, "a.nav-link", "Me")
    await click_text(bob, "button", "Delete my account")
    await fill(bob, "input[name=confirmLogin]", "bob")
    await shot(bob, "delete-account")
    await click_text(bob, "button", "Delete my account now")
    signin = q('form[aria-label="Sign in to Chatto"]')
    await bob.wait_js(f"!!{signin}", 20)
    authors = "[...document.querySelectorAll('.timeline bdi.author')].map((b) => b.textContent)"
    await alice.wait_js(f"{authors}.includes('Deleted User')", 20)


async def check_clean(*pages: Page, statuses: tuple[int, ...] = ()) -> None:
    """No console error, uncaught exception or CSP violation on any page."""
    for page in pages:
        problems = await page.problems(statuses)
        assert not problems, problems
