"""Accounts and administration through the web client in headless Chromium."""

from __future__ import annotations

import re
from pathlib import Path

import trio

from tests.authflow import mailed_code
from tests.browser import Page, open_page
from tests.conftest import OWNER_EMAIL, ConfigFactory, start_mail_server
from tests.smtp_sink import SmtpSink
from tests.web.test_web_client import check_clean, png
from tests.web.ui import click, click_text, fill, need_chromium, q, shot, sign_up

PW = "a long enough password"
SIGNIN = q('form[aria-label="Sign in to Chatto"]')


async def sign_in(page: Page, url: str, login: str, pw: str) -> None:
    await page.load(f"{url}/login")
    await fill(page, "input[name=login]", login)
    await fill(page, "input[name=password]", pw)
    await click(page, "form button[type=submit]")


async def wrong_code(page: Page, url: str) -> None:
    """A wrong code says how many tries are left (for any address: no oracle)."""
    await page.load(f"{url}/signup")
    await fill(page, "input[name=email]", "nobody-yet@example.com")
    await click(page, "form button[type=submit]")
    await fill(page, "input[name=code]", "000000")
    await click(page, "form button[type=submit]")
    await page.wait_js(f"/attempts? left/.test({q('.error')}?.textContent || '')")


async def verify_email(page: Page, sink: SmtpSink) -> None:
    """A second address, verified with the mailed code from the Me page."""
    await fill(page, "input[name=email]", "boss2@example.com")
    await click_text(page, "form[aria-label='Add an email address'] button", "Send a code")
    await page.wait_js("document.body.innerText.includes('we sent')")
    await fill(page, "input[name=code]", await mailed_code(sink, "boss2@example.com"))
    await click_text(page, "form[aria-label='Confirm the code'] button", "Verify")
    await page.wait_js("document.body.innerText.includes('Address verified')")
    assert "boss2@example.com" in await page.js("document.body.innerText")


async def upload_avatar(page: Page, tmp_path: Path) -> None:
    avatar = tmp_path / "avatar.png"
    avatar.write_bytes(png(64, 64, (63, 91, 216)))
    doc = await page.call("DOM.getDocument")
    node = await page.call(
        "DOM.querySelector", nodeId=doc["root"]["nodeId"], selector="input[name=avatar]"
    )
    await page.call("DOM.setFileInputFiles", nodeId=node["nodeId"], files=[str(avatar)])
    await click_text(page, "form[aria-label='Avatar'] button", "Upload avatar")
    await page.wait_js(f"{q('img.avatar.lg')}?.naturalWidth === 64")


async def test_accounts_and_admin(
    nursery: trio.Nursery, make_config: ConfigFactory, tmp_path: Path
) -> None:
    need_chromium()
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_OWNERS_EMAILS=OWNER_EMAIL,
        CHATTO_LIMITS_LOGIN_PER_ACCOUNT="3/300",
    )
    url = env.url.replace("127.0.0.1", "localhost")
    with trio.fail_after(180):
        async with open_page() as page:
            await page.viewport(1200, 800)
            await page.load(url)
            await page.wait_js(f"!!{SIGNIN}")
            await shot(page, "sign-in")
            await wrong_code(page, url)
            await sign_up(page, url, env.sink, OWNER_EMAIL, "boss", PW)
            # The owner sees the administration; users are metadata only.
            await page.load(url)
            await click_text(page, "a.nav-link", "Server")
            await page.wait_js(
                "document.querySelector('table')?.innerText.includes('boss@example.com')"
            )
            await click_text(page, "button[role=tab]", "Permissions")
            await fill(page, "input[name=explainLogin]", "boss")
            await page.js("document.querySelector('select[name=permission]') && true")
            await click_text(
                page, "form[aria-label='Why is it allowed or denied?'] button", "Explain"
            )
            await page.wait_js("document.body.innerText.includes('Allowed:')")
            await click_text(page, "button[role=tab]", "Users")
            await page.wait_js("!!document.querySelector('table')")
            await shot(page, "admin")
            # Me: a new display name, a new password.
            await click_text(page, "a.nav-link", "Me")
            await fill(page, "input[name=displayName]", "The Boss")
            await click_text(page, "form[aria-label='Display name'] button", "Save name")
            await page.wait_js(f"{q('.me-row bdi')}.textContent === 'The Boss'")
            await upload_avatar(page, tmp_path)
            await fill(page, "input[name=currentPassword]", PW)
            await fill(page, "input[name=newPassword]", PW + "2")
            await click_text(page, "form[aria-label='Change password'] button", "Change password")
            await page.wait_js("document.body.innerText.includes('Password changed')")
            await verify_email(page, env.sink)
            await page.js("document.querySelector('.page').scrollTop = 0; true")
            await shot(page, "me")
            # The session survives the change (fresh CSRF token): sign out works.
            await click_text(page, "button", "Sign out")
            await page.wait_js(f"!!{SIGNIN}")
            # A wrong password says so; by email with the right one gets in.
            await sign_in(page, url, OWNER_EMAIL, "wrong password!")
            await page.wait_js(f"{q('.error')}?.textContent.length > 0")
            await sign_in(page, url, OWNER_EMAIL, PW + "2")
            await page.wait_js(f"!!{q('nav.sidebar')}")
            # Sign out everywhere ends this session too.
            await click_text(page, "a.nav-link", "Me")
            await click_text(page, "button", "Sign out everywhere")
            await page.wait_js(f"!!{SIGNIN}")
            # Too many attempts: the wait is stated.
            for _ in range(4):
                await sign_in(page, url, "boss", "wrong password!")
                await page.wait_js(f"{q('.error')}?.textContent.length > 0")
            text = await page.js(f"{q('.error')}.textContent")
            assert re.search(r"Too many attempts\. Try again in \d+ (seconds|minutes)\.", text), (
                text
            )
            # Forgot password: the mailed link opens the reset page.
            await click_text(page, "a", "Forgot your password?")
            await fill(page, "input[name=email]", OWNER_EMAIL)
            await click(page, "form button[type=submit]")
            await page.wait_js(f"{q('.info')}?.textContent.includes('If the address can be used')")
            mails = await env.sink.wait_for(OWNER_EMAIL, 2)
            link = re.search(r"https?://\S+/reset-password\?token=\S+", mails[-1].get_content())
            assert link, mails[-1].get_content()
            reset = re.sub(r"^https?://[^/]+", url, link.group(0))
            await page.load(reset)
            await fill(page, "input[name=password]", PW + "3")
            await click(page, "form button[type=submit]")
            await page.wait_js(f"{q('.info')}?.textContent.includes('password is changed')")
            # Phone width: the sign-in page and the room list fit.
            await page.viewport(390, 780, mobile=True)
            await page.load(f"{url}/login")
            await page.wait_js(f"!!{SIGNIN}")
            assert await page.js("document.documentElement.scrollWidth <= 390")
            # Only the refusals provoked above (wrong password, rate limit).
            await check_clean(page, statuses=(400, 401, 429))
    await env.server.stop()
