"""The #19 API through the web client in headless Chromium: an invite-only
server, sign-up through an invite link, notifications and mentions live
between two people, followed threads, pins, member search and bans,
statuses, and server settings seen live."""

from __future__ import annotations

import json
from urllib.parse import urlsplit

import trio

from tests.authflow import mailed_code
from tests.browser import Page, open_page
from tests.conftest import OWNER_EMAIL, ConfigFactory, start_mail_server
from tests.smtp_sink import SmtpSink
from tests.web.test_web_client import act_on, check_clean, msg_with
from tests.web.ui import click, click_text, fill, need_chromium, q, send, shot, sign_up

PW = "a long enough password"
NAV = "a.nav-link"
SIGNIN = q('form[aria-label="Sign in to Chatto"]')
NOTES_BADGE = q('a.nav-link[href="/notifications"] .badge')
PINS = q('.side [aria-label="Pinned messages"]')
UNBAN = q('button[aria-label="Unban bob"]')


def room_link(name: str) -> str:
    return f"[...document.querySelectorAll('a.room-link')].find((a) => a.textContent.includes({json.dumps(name)}))"


async def open_room(page: Page, name: str) -> None:
    await click_text(page, "a.room-link", name)
    await page.wait_js(f"{q('.room-head h1')}?.textContent === {json.dumps('#' + name)}")


async def make_invite(alice: Page) -> str:
    """The owner creates a one-use link joining #lounge in the Server view."""
    await click_text(alice, NAV, "Server")
    await click_text(alice, "button[role=tab]", "Invites")
    await alice.wait_js(f"!!{q('select[name=inviteRoom]')}")
    await alice.js(
        "const s = document.querySelector('select[name=inviteRoom]');"
        "s.value = [...s.options].find((o) => o.text === '#lounge').value; true"
    )
    await click_text(alice, "form[aria-label='Create an invite link'] button", "Create link")
    link: str = await alice.wait_js(f"{q('input[name=inviteUrl]')}?.value")
    await alice.wait_js("document.body.innerText.includes('0 / 1')")
    await shot(alice, "admin-invites")
    return link


async def invite_sign_up(bob: Page, url: str, sink: SmtpSink, link: str) -> None:
    """A bad link says so; the real one leads through the sign-up steps."""
    await bob.load(f"{url}/login")
    await bob.wait_js(f"!!{SIGNIN}")
    assert await bob.js("!document.body.innerText.includes('Create an account')")
    await bob.load(f"{url}/invite#not-a-real-code")
    await bob.wait_js("document.body.innerText.includes('invalid, expired or used up')")
    path = urlsplit(link)
    assert path.path == "/invite" and path.fragment
    # A fresh load (from /invite to /invite#code would only move the fragment).
    await bob.load(f"{url}/login")
    await bob.load(f"{url}/invite#{path.fragment}")
    await bob.wait_js("document.body.innerText.includes('You were invited')")
    assert await bob.js("location.hash") == ""
    await fill(bob, "input[name=email]", "bob@example.com")
    await click(bob, "form button[type=submit]")
    await fill(bob, "input[name=code]", await mailed_code(sink, "bob@example.com"))
    await click(bob, "form button[type=submit]")
    await fill(bob, "input[name=login]", "bob")
    await fill(bob, "input[name=password]", PW)
    await click(bob, "form button[type=submit]")
    # The invite joined him to #lounge.
    await bob.wait_js(f"!!{room_link('lounge')}")


async def status_shown(alice: Page, bob: Page) -> None:
    await click_text(bob, NAV, "Me")
    await fill(bob, "input[name=statusEmoji]", "🌴")
    await fill(bob, "input[name=statusText]", "On holiday")
    await click_text(bob, "form[aria-label='Set your status'] button", "Set status")
    await bob.wait_js(f"{q('.me-row .status')}?.textContent === '🌴 On holiday'")
    await open_room(bob, "lounge")
    await open_room(alice, "lounge")
    await send(bob, "Morning all")
    await alice.wait_js(
        f"{msg_with('Morning all')}?.querySelector('.status')?.textContent === '🌴 On holiday'"
    )


async def mention_and_notifications(alice: Page, bob: Page) -> None:
    """Bob mentions Alice while she is elsewhere: badge, notification, highlight; dismiss."""
    await click_text(alice, NAV, "Notifications")
    await alice.wait_js("document.body.innerText.includes('No notifications')")
    # The composer completes "@al" from the room's members.
    await fill(bob, ".room-main .composer-input", "Have a look @al")
    await bob.wait_js(f"{q('.mention-list [aria-selected=true]')}?.textContent.includes('@alice')")
    await bob.press("Enter")
    await bob.insert_text("please")
    await bob.press("Enter")
    await alice.wait_js(
        f"{room_link('lounge')}?.querySelector('.badge.mention')?.textContent === '@1'"
    )
    note = (
        "[...document.querySelectorAll('.note')].find((n) => n.innerText.includes('Have a look'))"
    )
    await alice.wait_js(f"!!{note}")
    assert "bob mentioned you in #lounge" in await alice.js(f"{note}.innerText")
    await alice.wait_js(f"{NOTES_BADGE}?.textContent === '1'")
    await shot(alice, "notifications")
    await alice.js(f"{note}.querySelector('.note-open').click(); true")
    await alice.wait_js(f"{msg_with('Have a look')}?.classList.contains('mention')")
    await alice.wait_js(f"!{room_link('lounge')}.querySelector('.badge')")
    # A reply to Bob notifies him; he dismisses it, live on his list.
    await act_on(alice, "Morning all", "Reply")
    await send(alice, "Morning Bob")
    await click_text(bob, NAV, "Notifications")
    bob_note = (
        "[...document.querySelectorAll('.note')].find((n) => n.innerText.includes('Morning Bob'))"
    )
    await bob.wait_js(f"!!{bob_note}")
    assert "replied to you" in await bob.js(f"{bob_note}.innerText")
    await bob.js(f"{bob_note}.querySelector('button[aria-label^=Dismiss]').click(); true")
    await bob.wait_js(f"!{bob_note} && !{NOTES_BADGE}")
    # Alice dismisses all of hers.
    await click_text(alice, NAV, "Notifications")
    await click_text(alice, "button", "Dismiss all")
    await alice.wait_js("document.body.innerText.includes('No notifications')")


async def followed_thread(alice: Page, bob: Page) -> None:
    """Bob replies in a thread on Alice's message: she follows it, sees it unread."""
    await open_room(alice, "lounge")
    await send(alice, "Thread starter")
    await open_room(bob, "lounge")
    await act_on(bob, "Thread starter", "Reply in thread")
    await send(bob, "A reply in the thread", ".thread .composer-input")
    await click_text(alice, NAV, "Threads")
    item = "[...document.querySelectorAll('.note')].find((n) => n.innerText.includes('Thread starter'))"
    await alice.wait_js(f"{item}?.querySelector('.badge')?.textContent === '1'")
    await alice.js(f"{item}.querySelector('.note-open').click(); true")
    await alice.wait_js(f"{q('.thread .timeline')}?.innerText.includes('A reply in the thread')")
    follow = q(".thread .panel-head button[aria-pressed]")
    await alice.wait_js(f"{follow}?.textContent === 'Following'")
    await alice.js(f"{follow}.click(); true")
    await alice.wait_js(f"{follow}.textContent === 'Follow'")
    await alice.js(f"{follow}.click(); true")
    await alice.wait_js(f"{follow}.textContent === 'Following'")
    await click(alice, "button[aria-label='Close thread']")


async def levels(bob: Page) -> None:
    """A room's level and mute (the Notify panel), and the server-wide level (Me)."""
    await open_room(bob, "lounge")
    await click_text(bob, ".room-head button", "Notify")
    await bob.wait_js("document.body.innerText.includes('In force: mentions')")
    await bob.js("const m = document.querySelector('input[name=roomMuted]'); m.click(); true")
    await bob.wait_js("document.body.innerText.includes('In force: nothing (muted)')")
    await bob.js("document.querySelector('input[name=roomMuted]').click(); true")
    await bob.wait_js("document.body.innerText.includes('In force: mentions.')")
    await click_text(bob, ".room-head button", "Notify")
    await click_text(bob, NAV, "Me")
    await bob.wait_js(f"{q('select[name=serverLevel]')}?.value === 'MENTIONS'")
    await bob.js("document.querySelector('select[name=serverLevel]').value = 'ALL'; true")
    await click_text(bob, "form[aria-label='Notification level'] button", "Save level")
    await bob.wait_js("document.body.innerText.includes('Saved.')")
    await open_room(bob, "lounge")


async def pins(alice: Page, bob: Page) -> None:
    await act_on(alice, "Morning all", "Pin message")
    await bob.wait_js(
        f"{msg_with('Morning all')}?.querySelector('.pinned')?.textContent === 'Pinned'"
    )
    await click_text(bob, ".room-head button", "Pinned")
    await bob.wait_js(f"{PINS}?.innerText.includes('Morning all')")
    await shot(bob, "pins")
    await act_on(alice, "Morning all", "Unpin message")
    await bob.wait_js(f"!{msg_with('Morning all')}.querySelector('.pinned')")
    await bob.wait_js(f"{PINS}?.innerText.includes('Nothing pinned')")


async def members_and_bans(alice: Page, bob: Page) -> None:
    await click(alice, "button[aria-label='Show members']")
    members = "[...document.querySelectorAll('.side .members li')].map((li) => li.innerText)"
    await alice.wait_js(f"{members}.length === 2")
    # Presence is off on this server: no dots.
    assert await alice.js("!document.querySelector('.side .members .dot')")
    await fill(alice, "input[name=memberSearch]", "bo")
    await alice.wait_js(f"{members}.length === 1 && {members}[0].includes('bob')")
    await fill(alice, "input[name=memberSearch]", "zzz")
    await alice.wait_js(f"{members}[0] === 'No member matches.'")
    await fill(alice, "input[name=memberSearch]", "bob")
    await click(alice, "button[aria-label='Ban bob']")
    await fill(alice, "input[name=banReason]", "Testing bans")
    await click_text(alice, ".ban button", "Ban")
    await bob.wait_js(f"!{room_link('lounge')}")
    await alice.wait_js(f"!!{UNBAN}")
    assert "Testing bans" in await alice.js(f"{q('.bans')}.innerText")
    await click(alice, "button[aria-label='Unban bob']")
    await alice.wait_js("document.body.innerText.includes('Nobody is banned')")


async def server_settings_live(alice: Page, bob: Page) -> None:
    await click_text(alice, NAV, "Server")
    await click_text(alice, "button[role=tab]", "Server")
    await fill(alice, "input[name=serverName]", "Chatto Club")
    await click_text(alice, "form[aria-label='Server settings'] button", "Save")
    await bob.wait_js(f"{q('.server-name')}?.textContent === 'Chatto Club'")


async def room_order(alice: Page) -> None:
    """A second channel moved above the first: the sidebar follows."""
    await click_text(alice, NAV, "New room")
    await fill(alice, "input[name=name]", "annex")
    await click(alice, "form[aria-label='Create a room'] button[type=submit]")
    await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#annex'")
    mine = ".map((n) => n.textContent.replace('#', '')).filter((n) => n !== 'alice').join()"
    order = f"[...document.querySelectorAll('a.room-link .room-name')]{mine}"
    assert await alice.js(order) == "annex,announcements,general,lounge"  # by name
    await click_text(alice, NAV, "Server")
    await click_text(alice, "button[role=tab]", "Groups")
    await click(alice, "button[aria-label='Move #lounge up']")
    await alice.wait_js(f"{order} === 'annex,announcements,lounge,general'")
    listed = f"[...document.querySelectorAll('.order li bdi')]{mine}"
    await alice.wait_js(f"{listed} === 'annex,announcements,lounge,general'")
    await click(alice, "button[aria-label='Move #lounge up']")
    await alice.wait_js(f"{order} === 'annex,lounge,announcements,general'")


async def test_invites_notifications_and_more(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    need_chromium()
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_OWNERS_EMAILS=OWNER_EMAIL,
        CHATTO_AUTH_REGISTRATION="invite-only",
        CHATTO_PRESENCE_ENABLED="false",
    )
    url = env.url.replace("127.0.0.1", "localhost")
    with trio.fail_after(240):
        async with open_page() as alice, open_page() as bob:
            await alice.viewport(1200, 800)
            await bob.viewport(1200, 800)
            # The owner's address may sign up without an invite.
            await sign_up(alice, url, env.sink, OWNER_EMAIL, "alice", PW)
            await click_text(alice, NAV, "New room")
            await fill(alice, "input[name=name]", "lounge")
            await click(alice, "form[aria-label='Create a room'] button[type=submit]")
            await alice.wait_js(f"{q('.room-head h1')}?.textContent === '#lounge'")
            link = await make_invite(alice)
            await invite_sign_up(bob, url, env.sink, link)
            await status_shown(alice, bob)
            await mention_and_notifications(alice, bob)
            await followed_thread(alice, bob)
            await levels(bob)
            await pins(alice, bob)
            await members_and_bans(alice, bob)
            await server_settings_live(alice, bob)
            await room_order(alice)
            await check_clean(alice, bob, statuses=(400, 403, 404))
    await env.server.stop()
