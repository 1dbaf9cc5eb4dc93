"""Helpers that drive the account flows over real HTTP (used by several tests)."""

from __future__ import annotations

import re
from typing import Any

import attrs
import httpx

from tests.smtp_sink import SmtpSink

CODE_RE = re.compile(r"\b(\d{6})\b")


@attrs.define
class Account:
    user: dict[str, Any]
    login: str
    email: str
    password: str
    cookie: str = ""
    csrf: str = ""
    token: str = ""


async def mailed_code(sink: SmtpSink, email: str, count: int = 1) -> str:
    msgs = await sink.wait_for(email, count)
    body = msgs[count - 1].get_content()
    match = CODE_RE.search(body)
    assert match, body
    return match.group(1)


async def register(
    c: httpx.AsyncClient, sink: SmtpSink, email: str, login: str, password: str
) -> Account:
    """Register through the three steps; return the logged-in (cookie) account."""
    raw_email, email = email, email.strip().lower()
    before = len(sink.to(email))
    r = await c.post("/auth/register", json={"email": raw_email})
    assert r.status_code == 200, r.text
    code = await mailed_code(sink, email, before + 1)
    r = await c.post("/auth/register/verify-code", json={"email": raw_email, "code": code})
    assert r.status_code == 200, r.text
    token = r.json()["token"]
    r = await c.post(
        "/auth/register/complete", json={"token": token, "login": login, "password": password}
    )
    assert r.status_code == 200, r.text
    cookie = r.cookies.get("chatto_session") or ""
    c.cookies.clear()  # tests pass credentials explicitly
    return Account(r.json()["user"], login, email, password, cookie, r.json()["csrfToken"])


async def login_token(c: httpx.AsyncClient, login: str, password: str) -> str:
    r = await c.post("/auth/login", json={"login": login, "password": password, "mode": "token"})
    assert r.status_code == 200, r.text
    c.cookies.clear()
    return str(r.json()["token"])


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def cookie_headers(account: Account, csrf: bool = True) -> dict[str, str]:
    headers = {"cookie": f"chatto_session={account.cookie}"}
    if csrf:
        headers["x-csrf-token"] = account.csrf
    return headers


async def viewer(c: httpx.AsyncClient, **headers: str) -> dict[str, Any] | None:
    """The viewer as GraphQL sees the given credentials (None if unauthenticated)."""
    r = await c.post(
        "/api/graphql",
        json={"query": "{ viewer { id login displayName isOwner emails } }"},
        headers=headers,
    )
    body = r.json()
    if body.get("errors"):
        assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED", body
        return None
    return body["data"]["viewer"]  # type: ignore[no-any-return]


def without_request_id(body: bytes) -> bytes:
    """A JSON error body minus its request id: unique per request by design, it tells nothing."""
    return re.sub(rb',"requestId":"[0-9a-f]{16}"', b"", body)
