"""Accounts and authentication over real HTTP, real NATS and a real SMTP sink."""

from __future__ import annotations

import httpx
import pytest
import trio

from tests.authflow import (
    bearer,
    cookie_headers,
    login_token,
    mailed_code,
    register,
    viewer,
    without_request_id,
)
from tests.conftest import OWNER_EMAIL, AuthEnv, ConfigFactory, start_mail_server

PASSWORD = "correct horse battery"


def client(env: AuthEnv) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=env.url, timeout=20)


async def test_register_login_and_authenticate_every_way(auth_env: AuthEnv) -> None:
    with trio.fail_after(30):
        async with client(auth_env) as c:
            acct = await register(c, auth_env.sink, "Alice@Example.com ", "alice", PASSWORD)
            assert acct.user["login"] == "alice" and acct.cookie and acct.csrf
            me = await viewer(c, **cookie_headers(acct, csrf=False))
            assert me is not None and me["login"] == "alice"
            assert me["emails"] == ["alice@example.com"]  # normalised
            token = await login_token(c, "ALICE", PASSWORD)  # logins are case-insensitive
            assert (await viewer(c, **bearer(token)))["id"] == acct.user["id"]  # type: ignore[index]
            by_email = await login_token(c, "alice@EXAMPLE.com", PASSWORD)
            assert await viewer(c, **bearer(by_email)) is not None
            # Others see the user, but not their emails.
            bob = await register(c, auth_env.sink, "bob@example.com", "bob", PASSWORD)
            r = await c.post(
                "/api/graphql",
                json={"query": '{ userByLogin(login: "Alice") { id login emails } }'},
                headers=cookie_headers(bob),
            )
            assert r.json()["data"]["userByLogin"] == {
                "id": acct.user["id"],
                "login": "alice",
                "emails": None,
            }


async def test_registration_and_reset_answers_do_not_reveal_accounts(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(30):
        async with client(auth_env) as c:
            await register(c, auth_env.sink, "known@example.com", "known", PASSWORD)
            answers = {}
            for email in ("known@example.com", "unknown@example.com"):
                for path in ("/auth/register", "/auth/forgot-password"):
                    r = await c.post(path, json={"email": email})
                    answers[(email, path)] = (r.status_code, r.content)
            for path in ("/auth/register", "/auth/forgot-password"):
                assert (
                    answers[("known@example.com", path)] == answers[("unknown@example.com", path)]
                )
            # Login: unknown user and wrong password each cost exactly one bcrypt compare.
            stats = services.accounts.hasher.stats
            for login in ("nobody-here", "known", "known@example.com", "no@such.mail"):
                before = stats.checks
                r = await c.post("/auth/login", json={"login": login, "password": "wrong password"})
                assert r.status_code == 401
                assert r.json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
                assert stats.checks == before + 1, login
            bodies = set()
            for login in ("nobody-here", "known"):
                r = await c.post("/auth/login", json={"login": login, "password": "wrong password"})
                bodies.add(without_request_id(r.content))  # unique per request by design
            assert len(bodies) == 1


async def test_password_change_and_reset_reject_old_credentials(auth_env: AuthEnv) -> None:
    with trio.fail_after(40):
        async with client(auth_env) as c:
            acct = await register(c, auth_env.sink, "carol@example.com", "carol", PASSWORD)
            old_token = await login_token(c, "carol", PASSWORD)
            # Change over HTTP with the cookie session (CSRF token required).
            r = await c.post(
                "/auth/change-password",
                json={"currentPassword": PASSWORD, "newPassword": "second password"},
                headers=cookie_headers(acct, csrf=False),
            )
            assert r.status_code == 403
            r = await c.post(
                "/auth/change-password",
                json={"currentPassword": PASSWORD, "newPassword": "second password"},
                headers=cookie_headers(acct),
            )
            assert r.status_code == 200, r.text
            new_cookie = r.cookies.get("chatto_session")
            c.cookies.clear()
            assert await viewer(c, **bearer(old_token)) is None
            assert await viewer(c, **cookie_headers(acct, csrf=False)) is None
            assert await viewer(c, cookie=f"chatto_session={new_cookie}") is not None
            r = await c.post("/auth/login", json={"login": "carol", "password": PASSWORD})
            assert r.status_code == 401
            token2 = await login_token(c, "carol", "second password")
            # Reset by mail: the link works once and kills token2.
            r = await c.post("/auth/forgot-password", json={"email": "carol@example.com"})
            assert r.status_code == 200
            msgs = await auth_env.sink.wait_for("carol@example.com", 2)
            link = msgs[-1].get_content().split("token=")[1].split()[0]
            r = await c.post(
                "/auth/reset-password", json={"token": link, "password": "third password"}
            )
            assert r.status_code == 200, r.text
            assert await viewer(c, **bearer(token2)) is None
            r = await c.post(
                "/auth/reset-password", json={"token": link, "password": "fourth password"}
            )
            assert (
                r.status_code == 400
                and r.json()["errors"][0]["extensions"]["code"] == "INVALID_TOKEN"
            )
            assert await viewer(c, **bearer(await login_token(c, "carol", "third password")))


async def test_graphql_change_password_with_bearer_gets_a_fresh_token(auth_env: AuthEnv) -> None:
    with trio.fail_after(30):
        async with client(auth_env) as c:
            await register(c, auth_env.sink, "dan@example.com", "dan", PASSWORD)
            token = await login_token(c, "dan", PASSWORD)
            q = 'mutation { changePassword(currentPassword: "%s", newPassword: "brand new pw") { ok token } }'
            r = await c.post(
                "/api/graphql", json={"query": q % "wrong one!"}, headers=bearer(token)
            )
            assert r.json()["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
            r = await c.post("/api/graphql", json={"query": q % PASSWORD}, headers=bearer(token))
            fresh = r.json()["data"]["changePassword"]["token"]
            assert await viewer(c, **bearer(token)) is None
            assert await viewer(c, **bearer(fresh)) is not None
            r = await c.post(
                "/api/graphql",
                json={"query": 'mutation { updateProfile(displayName: "Dan D.") { displayName } }'},
                headers=bearer(fresh),
            )
            assert r.json()["data"]["updateProfile"]["displayName"] == "Dan D."


async def test_bad_inputs_get_clear_errors(auth_env: AuthEnv) -> None:
    with trio.fail_after(40):
        async with client(auth_env) as c:
            acct = await register(c, auth_env.sink, "erin@example.com", "erin", PASSWORD)
            # Tampered and truncated cookies are simply not sessions.
            tampered = acct.cookie[:-3] + ("AAA" if not acct.cookie.endswith("AAA") else "BBB")
            assert await viewer(c, cookie=f"chatto_session={tampered}") is None
            assert await viewer(c, cookie=f"chatto_session={acct.cookie[:20]}") is None
            assert await viewer(c, cookie="chatto_session=garbage") is None
            assert await viewer(c, authorization="Bearer ct_not-a-real-token") is None
            # Wrong codes: five tries, then even the right code is refused.
            await c.post("/auth/register", json={"email": "frank@example.com"})
            code = await mailed_code(auth_env.sink, "frank@example.com")
            wrong = f"{(int(code) + 1) % 1_000_000:06d}"
            messages = []
            for _ in range(5):
                r = await c.post(
                    "/auth/register/verify-code", json={"email": "frank@example.com", "code": wrong}
                )
                assert r.status_code == 400
                messages.append(r.json()["errors"][0]["message"])
            assert "1 attempts left" in messages[3] and "0 attempts left" in messages[4]
            r = await c.post(
                "/auth/register/verify-code", json={"email": "frank@example.com", "code": code}
            )
            assert r.status_code == 400 and "too many" in r.json()["errors"][0]["message"]
            # A used code cannot be replayed.
            await c.post("/auth/register", json={"email": "gina@example.com"})
            code = await mailed_code(auth_env.sink, "gina@example.com")
            body = {"email": "gina@example.com", "code": code}
            first = await c.post("/auth/register/verify-code", json=body)
            assert first.status_code == 200
            replay = await c.post("/auth/register/verify-code", json=body)
            assert replay.status_code == 400
            token = first.json()["token"]
            for password, fragment in (("x" * 129, "at most 128"), ("x" * 7, "at least 8")):
                r = await c.post(
                    "/auth/register/complete",
                    json={"token": token, "login": "gina", "password": password},
                )
                assert r.status_code == 400 and fragment in r.json()["errors"][0]["message"]
            r = await c.post(
                "/auth/register/complete", json={"token": token, "login": "g", "password": PASSWORD}
            )
            assert r.status_code == 400 and "login" in r.json()["errors"][0]["message"]
            r = await c.post(
                "/auth/register/complete",
                json={"token": token, "login": "erin", "password": PASSWORD},
            )
            assert r.status_code == 409  # taken; the token is still good
            # 128 bytes of multi-byte text is fine and nothing is truncated.
            long_pw = "é" * 64
            r = await c.post(
                "/auth/register/complete",
                json={"token": token, "login": "gina", "password": long_pw},
            )
            assert r.status_code == 200, r.text
            assert await login_token(c, "gina", long_pw)
            r = await c.post("/auth/login", json={"login": "gina", "password": "é" * 63 + "e"})
            assert r.status_code == 401
            # Malformed requests.
            r = await c.post(
                "/auth/login", content=b"{", headers={"content-type": "application/json"}
            )
            assert r.status_code == 400
            r = await c.post("/auth/login", data={"login": "x"})
            assert r.status_code == 400
            r = await c.post("/auth/register", json={"email": "not-an-address"})
            assert r.status_code == 400


async def test_expired_code_is_refused(nursery: trio.Nursery, make_config: ConfigFactory) -> None:
    env = await start_mail_server(nursery, make_config, CHATTO_AUTH_CODE_TTL_SECONDS="1")
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=env.url) as c:
            await c.post("/auth/register", json={"email": "late@example.com"})
            code = await mailed_code(env.sink, "late@example.com")
            await trio.sleep(2.5)  # the 1 s TTL is enforced by NATS
            r = await c.post(
                "/auth/register/verify-code", json={"email": "late@example.com", "code": code}
            )
            assert r.status_code == 400 and "expired" in r.json()["errors"][0]["message"]
    await env.server.stop()


async def test_owner_by_verified_email_without_restart(auth_env: AuthEnv) -> None:
    with trio.fail_after(30):
        async with client(auth_env) as c:
            owner = await register(c, auth_env.sink, OWNER_EMAIL.upper(), "theboss", PASSWORD)
            assert owner.user["isOwner"] is True
            helen = await register(c, auth_env.sink, "helen@example.com", "helen", PASSWORD)
            assert helen.user["isOwner"] is False
            # Adding and verifying a second address that is listed makes a user owner.
            # (The owner's address is taken, so use a fresh server-level listed one.)
            r = await c.post(
                "/auth/verify-email/request-code",
                json={"email": "helen.work@example.com"},
                headers=cookie_headers(helen),
            )
            assert r.status_code == 200
            code = await mailed_code(auth_env.sink, "helen.work@example.com")
            r = await c.post(
                "/auth/verify-email/confirm-code",
                json={"email": "helen.work@example.com", "code": code},
                headers=cookie_headers(helen, csrf=False),
            )
            assert r.status_code == 403  # CSRF token missing
            r = await c.post(
                "/auth/verify-email/confirm-code",
                json={"email": "helen.work@example.com", "code": code},
                headers=cookie_headers(helen),
            )
            assert r.status_code == 200, r.text
            assert r.json()["emails"] == ["helen@example.com", "helen.work@example.com"]
            token = await login_token(c, "helen.work@example.com", PASSWORD)
            assert (await viewer(c, **bearer(token)))["login"] == "helen"  # type: ignore[index]


async def test_csrf_is_required_for_cookie_mutations_only(auth_env: AuthEnv) -> None:
    mutation = {"query": 'mutation { updateProfile(displayName: "New") { displayName } }'}
    with trio.fail_after(30):
        async with client(auth_env) as c:
            acct = await register(c, auth_env.sink, "ivy@example.com", "ivy", PASSWORD)
            r = await c.post(
                "/api/graphql", json=mutation, headers=cookie_headers(acct, csrf=False)
            )
            assert r.status_code == 403
            r = await c.post(
                "/api/graphql",
                json=mutation,
                headers={**cookie_headers(acct, csrf=False), "x-csrf-token": "forged"},
            )
            assert r.status_code == 403
            r = await c.post("/api/graphql", json=mutation, headers=cookie_headers(acct))
            assert r.json()["data"]["updateProfile"]["displayName"] == "New"
            # Queries need no token; bearer requests need none either.
            assert await viewer(c, **cookie_headers(acct, csrf=False)) is not None
            token = await login_token(c, "ivy", PASSWORD)
            r = await c.post("/api/graphql", json=mutation, headers=bearer(token))
            assert "errors" not in r.json()
            # Logout ends the cookie session.
            r = await c.post("/auth/logout", json={}, headers=cookie_headers(acct))
            assert r.status_code == 200 and "Max-Age=0" in r.headers["set-cookie"]
            assert await viewer(c, **cookie_headers(acct, csrf=False)) is None
            r = await c.post("/auth/revoke-token", json={"token": token})
            assert await viewer(c, **bearer(token)) is None


@pytest.mark.parametrize("payload", [{"authorization": "Bearer ct_forged"}, {"authorization": 5}])
async def test_websocket_auth_from_init_payload(
    auth_env: AuthEnv, payload: dict[str, object]
) -> None:
    import json

    from trio_websocket import ConnectionClosed, open_websocket_url

    url = auth_env.url.replace("http://", "ws://") + "/api/graphql"
    with trio.fail_after(30):
        async with client(auth_env) as c:
            await register(c, auth_env.sink, "jo@example.com", "jo", PASSWORD)
            token = await login_token(c, "jo", PASSWORD)
        async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_message(
                json.dumps(
                    {"type": "connection_init", "payload": {"authorization": f"Bearer {token}"}}
                )
            )
            assert json.loads(await ws.get_message())["type"] == "connection_ack"
            await ws.send_message(
                json.dumps(
                    {"id": "1", "type": "subscribe", "payload": {"query": "{ viewer { login } }"}}
                )
            )
            msg = json.loads(await ws.get_message())
            assert msg["payload"]["data"]["viewer"]["login"] == "jo"
        async with open_websocket_url(url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_message(json.dumps({"type": "connection_init", "payload": payload}))
            if isinstance(payload["authorization"], str):
                with pytest.raises(ConnectionClosed) as info:
                    await ws.get_message()
                assert info.value.reason.code == 4403
            else:  # not a credential at all: anonymous
                assert json.loads(await ws.get_message())["type"] == "connection_ack"
