"""What reaches storage: no plaintext secrets or PII, and an audit trail."""

from __future__ import annotations

import base64
import os
from pathlib import Path

import httpx
import trio

from actors.audit import AUDIT, UnknownLoginAttempted
from actors.events import EntityRef
from actors.users.events import (
    CredentialRevoked,
    LoginFailed,
    LoginSucceeded,
    PasswordSet,
    UserRegistered,
)
from tests.authflow import bearer, login_token, mailed_code, register, viewer
from tests.conftest import AuthEnv

PASSWORD = "Pl41n-Password-Sentinel"
NEW_PASSWORD = "N3w-Password-Sentinel"
LOGIN = "zz-sentinel-login"
EMAIL = "zz.sentinel@example.org"


def store_bytes(root: Path) -> bytes:
    chunks = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            chunks.append((Path(dirpath) / name).read_bytes())
    return b"\n".join(chunks)


async def test_jetstream_store_holds_no_plaintext_credentials_or_pii(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(40):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            await c.post("/auth/register", json={"email": EMAIL})
            code = await mailed_code(auth_env.sink, EMAIL)
            r = await c.post("/auth/register/verify-code", json={"email": EMAIL, "code": code})
            completion = r.json()["token"]
            r = await c.post(
                "/auth/register/complete",
                json={"token": completion, "login": LOGIN, "password": PASSWORD},
            )
            assert r.status_code == 200
            cookie = r.cookies["chatto_session"]
            c.cookies.clear()
            token = await login_token(c, LOGIN, PASSWORD)
            r = await c.post(
                "/api/graphql",
                json={
                    "query": "mutation($a: String!, $b: String!) { changePassword("
                    "currentPassword: $a, newPassword: $b) { token } }",
                    "variables": {"a": PASSWORD, "b": NEW_PASSWORD},
                },
                headers=bearer(token),
            )
            new_token = r.json()["data"]["changePassword"]["token"]
            await c.post("/auth/forgot-password", json={"email": EMAIL})
            await auth_env.sink.wait_for(EMAIL, 2)
            reset_link = auth_env.sink.to(EMAIL)[-1].get_content().split("token=")[1].split()[0]
    user = services.directory.find_login(LOGIN)
    assert user is not None
    # Stop the server so nats-server flushes its file store to disk.
    await auth_env.server.stop()
    store = services.config.nats_store_dir
    blob = store_bytes(store)
    secrets = {
        "password": PASSWORD,
        "new password": NEW_PASSWORD,
        "login": LOGIN,
        "email": EMAIL,
        "code": code,
        "completion token": completion,
        "bearer token": token,
        "new bearer token": new_token,
        "reset token": reset_link,
        "cookie": cookie,
    }
    for what, value in secrets.items():
        for form in (value.encode(), base64.b64encode(value.encode())):
            assert form not in blob, f"{what} found in the JetStream store"
    # The scan does see the data: user ids and event types are stored in the clear.
    assert user.id.encode() in blob and b"user.email_verified" in blob


async def test_audit_trail_and_encrypted_user_events(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            acct = await register(c, auth_env.sink, "audit@example.com", "audited", PASSWORD)
            await c.post("/auth/login", json={"login": "audited", "password": "bad password"})
            token = await login_token(c, "audited", PASSWORD)
            assert await viewer(c, **bearer(token)) is not None
            await c.post("/auth/revoke-token", json={"token": token})
            await c.post("/auth/login", json={"login": "nobody-at-all", "password": "whatever1"})
        events = await services.store.load(EntityRef("user", acct.user["id"]))
        audit = await services.store.load(AUDIT)
    kinds = [type(r.envelope.event) for r in events]
    assert LoginFailed in kinds and LoginSucceeded in kinds and CredentialRevoked in kinds
    unknown = [r.envelope.event for r in audit]
    assert len(unknown) == 1 and isinstance(unknown[0], UnknownLoginAttempted)
    assert "nobody" not in unknown[0].login_hash
    for rec in events:
        ev = rec.envelope.event
        if isinstance(ev, LoginSucceeded | LoginFailed):
            assert "127.0.0.1" not in ev.ip_hash and len(ev.ip_hash) == 32
        if isinstance(ev, UserRegistered):
            assert "audited" not in ev.login_enc
        if isinstance(ev, PasswordSet):
            assert ev.password_hash.startswith("$chatto1$$2b$") and PASSWORD not in ev.password_hash
