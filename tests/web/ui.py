"""Driving the web client like a person: helpers over tests/browser.py."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
import trio

from tests.authflow import mailed_code
from tests.browser import Page, chromium
from tests.smtp_sink import SmtpSink


def need_chromium() -> None:
    if chromium() is None:
        assert not os.environ.get("CI"), "CI must install Debian's chromium (.ci/run does)"
        pytest.skip("chromium is not installed here")


def q(selector: str) -> str:
    """A JS expression for ``document.querySelector(selector)``."""
    return f"document.querySelector({json.dumps(selector)})"


async def click(page: Page, selector: str) -> None:
    await page.wait_js(f"!!{q(selector)}")
    await page.js(f"{q(selector)}.click(); true")


async def fill(page: Page, selector: str, text: str) -> None:
    """Focus a field and type into it."""
    await page.wait_js(f"!!{q(selector)}")
    await page.js(f"{q(selector)}.focus(); {q(selector)}.select && {q(selector)}.select(); true")
    await page.insert_text(text)


async def click_text(page: Page, selector: str, text: str) -> None:
    """Click the element matching ``selector`` whose text contains ``text``."""
    expr = (
        f"[...document.querySelectorAll({json.dumps(selector)})]"
        f".find((e) => e.textContent.includes({json.dumps(text)}))"
    )
    await page.wait_js(f"!!{expr}")
    await page.js(f"{expr}.click(); true")


async def sign_up(page: Page, url: str, sink: SmtpSink, email: str, login: str, pw: str) -> None:
    """The three steps through the UI, the code read from the SMTP sink."""
    await page.load(f"{url}/signup")
    await fill(page, "input[name=email]", email)
    await click(page, "form button[type=submit]")
    code = await mailed_code(sink, email)
    await fill(page, "input[name=code]", code)
    await click(page, "form button[type=submit]")
    await fill(page, "input[name=login]", login)
    await fill(page, "input[name=password]", pw)
    await click(page, "form button[type=submit]")
    await page.wait_js(f"!!{q('nav.sidebar')}")


async def send(page: Page, text: str, composer: str = ".room-main .composer-input") -> None:
    await fill(page, composer, text)
    await page.press("Enter")


def timeline_text(selector: str = ".room-main .timeline") -> str:
    return f"({q(selector)}?.innerText || '')"


async def shot(page: Page, name: str) -> None:
    """A screenshot under $CHATTO_SCREENSHOTS (the README shows them)."""
    folder = os.environ.get("CHATTO_SCREENSHOTS")
    if folder:
        await trio.Path(folder).mkdir(parents=True, exist_ok=True)
        await page.screenshot(str(Path(folder) / f"{name}.png"))
