"""Session cookies: format, tampering, flags, rotation, startup warning."""

from __future__ import annotations

import logging
import time

import httpx
import pytest
import trio

from chatto.auth.cookies import CookieCodec, read_cookie
from chatto.server import warn_about_config
from tests.authflow import register, viewer
from tests.conftest import AuthEnv, ConfigFactory

SIGN = "s" * 40
ENC = "e" * 40


def test_encrypted_cookie_hides_its_payload_and_rejects_tampering() -> None:
    codec = CookieCodec(SIGN, ENC, secure=False, max_age=100)
    value = codec.encode({"u": "user-123", "s": "sid"})
    assert value.startswith("e1.") and "user-123" not in value
    assert codec.decode(value) == {"u": "user-123", "s": "sid"}
    prefix, body, mac = value.split(".")
    flipped = body[:-2] + ("A" if body[-2] != "A" else "B") + body[-1]
    for bad in (
        f"{prefix}.{flipped}.{mac}",
        value[:-1],
        value[: len(value) // 2],
        "",
        "e1..",
        "x.y.z",
    ):
        assert codec.decode(bad) is None
    # Another server's secret, or a signed-only cookie once encryption is on: refused.
    assert CookieCodec("t" * 40, ENC, False, 100).decode(value) is None
    signed_only = CookieCodec(SIGN, "", False, 100).encode({"u": "x"})
    assert signed_only.startswith("v1.") and codec.decode(signed_only) is None


def test_cookie_flags_follow_the_public_url() -> None:
    plain = CookieCodec(SIGN, ENC, secure=False, max_age=7776000).set_cookie("v")[1].decode()
    assert "HttpOnly" in plain and "SameSite=Lax" in plain and "Path=/" in plain
    assert "Max-Age=7776000" in plain and "Secure" not in plain
    secure = CookieCodec(SIGN, ENC, secure=True, max_age=10).set_cookie("v")[1].decode()
    assert secure.endswith("; Secure")
    assert read_cookie("a=1; chatto_session=abc; b=2") == "abc"


def test_missing_encryption_secret_logs_a_warning(
    make_config: ConfigFactory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    warn_about_config(make_config(CHATTO_WEBSERVER_COOKIE_ENCRYPTION_SECRET=""))
    assert "cookie_encryption_secret is not set" in caplog.text
    caplog.clear()
    warn_about_config(make_config())
    assert caplog.text == ""


async def test_old_cookie_is_rotated_and_the_old_session_revoked(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    authn = services.authn
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            acct = await register(c, auth_env.sink, "rot@example.com", "rotator", "a good password")
            user = services.directory.get(acct.user["id"])
            assert user is not None
            sid = await authn.sessions.issue_cookie_session(user.id, user.generation)
            # A cookie issued 80 days ago (of 90): less than a quarter of its life left.
            issued = int((time.time() - 80 * 86400) * 1000)
            old = authn.cookies.encode({"u": user.id, "s": sid, "g": user.generation, "i": issued})
            r = await c.post(
                "/api/graphql",
                json={"query": "{ viewer { login } }"},
                headers={"cookie": f"chatto_session={old}"},
            )
            assert r.json()["data"]["viewer"]["login"] == "rotator"
            fresh = r.cookies.get("chatto_session")
            c.cookies.clear()
            assert fresh and fresh != old
            assert await viewer(c, cookie=f"chatto_session={fresh}") is not None
            assert await viewer(c, cookie=f"chatto_session={old}") is None
