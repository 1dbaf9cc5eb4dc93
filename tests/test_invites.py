"""Invite links and registration modes, over real HTTP against a real NATS.

Attacks: the invite oracle (unknown, forged, malformed, used-up, revoked,
expired and closed-server invites answer byte-identically after the same
storage work), a race on an invite's last use, non-admins managing invites.
"""

from __future__ import annotations

import itertools
import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import trio

from tests.authflow import Account, login_token, mailed_code, register, without_request_id
from tests.conftest import (
    OWNER_EMAIL,
    AuthEnv,
    ConfigFactory,
    NatsProc,
    start_mail_server,
    start_server,
)
from tests.test_auth_storage import store_bytes
from tests.test_messaging import gql, ok

PW = "a long enough password"
PROBES = itertools.count()
CREATE = """mutation($e: Int, $m: Int, $r: ID) {
  createInvite(expiresInSeconds: $e, maxUses: $m, roomId: $r) {
    code url invite { id maxUses uses usable room { id } createdBy { login } }
  }
}"""
LIST = "{ invites { id maxUses uses usable expiresAt createdAt room { id } } }"


@pytest.fixture
async def invite_env(nursery: trio.Nursery, make_config: ConfigFactory) -> AsyncIterator[AuthEnv]:
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_OWNERS_EMAILS=OWNER_EMAIL,
        CHATTO_AUTH_REGISTRATION="invite-only",
    )
    yield env
    await env.server.stop()


async def verified_token(c: httpx.AsyncClient, env: AuthEnv, email: str, invite: str | None) -> str:
    """Steps 1 and 2 of a sign-up carrying ``invite``: the completion token."""
    extra = {} if invite is None else {"invite": invite}
    before = len(env.sink.to(email))
    r = await c.post("/auth/register", json={"email": email, **extra})
    assert r.status_code == 200, r.text
    code = await mailed_code(env.sink, email, before + 1)
    r = await c.post("/auth/register/verify-code", json={"email": email, "code": code, **extra})
    assert r.status_code == 200, r.text
    return str(r.json()["token"])


async def complete(c: httpx.AsyncClient, token: str, login: str) -> httpx.Response:
    body = {"token": token, "login": login, "password": PW, "mode": "token"}
    return await c.post("/auth/register/complete", json=body)


async def owner(c: httpx.AsyncClient, env: AuthEnv) -> tuple[Account, str]:
    account = await register(c, env.sink, OWNER_EMAIL, "boss", PW)
    return account, await login_token(c, "boss", PW)


async def test_invite_only_sign_up_joins_the_room(
    invite_env: AuthEnv, caplog: pytest.LogCaptureFixture
) -> None:
    env = invite_env
    caplog.set_level(logging.DEBUG)
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            info = (await c.get("/api/server")).json()
            assert info["registration"] == "invite-only" and info["registrationOpen"] is False
            public = await c.post("/api/graphql", json={"query": "{ server { registration } }"})
            assert public.json()["data"]["server"]["registration"] == "INVITE_ONLY"
            # owners.emails may sign up without an invite (the first owner).
            boss, tb = await owner(c, env)
            assert boss.user["isOwner"]
            # Anyone else gets the same answer, and a notice instead of a code.
            r = await c.post("/auth/register", json={"email": "stranger@example.com"})
            assert r.status_code == 200
            (notice,) = await env.sink.wait_for("stranger@example.com", 1)
            assert "invite" in notice.get_content() and "code is" not in notice.get_content()

            room = await ok(c, tb, 'mutation { createRoom(name: "#welcome") { id } }')
            room_id = room["createRoom"]["id"]
            made = (await ok(c, tb, CREATE, m=2, r=room_id))["createInvite"]
            code = made["code"]
            assert made["url"].endswith("/invite#" + code)
            assert made["invite"]["uses"] == 0 and made["invite"]["usable"]
            assert made["invite"]["createdBy"]["login"] == "boss"
            # The list shows metadata, never the code or its secret.
            listed = await gql(c, tb, LIST)
            assert code.split(".")[1] not in json.dumps(listed)
            assert listed["data"]["invites"][0]["id"] == made["invite"]["id"]

            assert (await c.post("/auth/invite", json={"invite": code})).json() == {"ok": True}
            token = await verified_token(c, env, "guest@example.com", code)
            r = await complete(c, token, "guest")
            assert r.status_code == 200, r.text
            tg = r.json()["token"]
            mine = await ok(c, tg, "{ myRooms { id } }")
            assert room_id in {x["id"] for x in mine["myRooms"]}
            (listed_after,) = (await ok(c, tb, LIST))["invites"]
            assert listed_after["uses"] == 1 and listed_after["usable"]

            # The secret is nowhere at rest (only its HMAC) and in no log line.
            secret = code.split(".")[1]
            assert secret.encode() not in store_bytes(
                env.server.running.services.config.nats_store_dir
            )
            assert secret not in caplog.text and made["invite"]["id"] in caplog.text
            # A member cannot manage invites (invite.manage: admins and owner).
            for query in (CREATE, LIST, 'mutation { revokeInvite(id: "x") }'):
                denied = await gql(c, tg, query)
                assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN", denied
            # Invites into a DM are refused like a room that does not exist.
            dm = await ok(
                c,
                tb,
                "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }",
                u=[r.json()["user"]["id"]],
            )
            bad = await gql(c, tb, CREATE, r=dm["startDM"]["id"])
            assert bad["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def _answers(
    c: httpx.AsyncClient, env: AuthEnv, invite: str
) -> list[tuple[str, int, bytes, dict[str, int]]]:
    """(route, status, body, storage calls) of each pre-auth route given ``invite``."""
    records = env.server.running.services.accounts.records
    out = []
    # A fresh address per probe (per-address sign-up budgets are small).
    email = f"probe{next(PROBES)}@example.com"
    routes: list[tuple[str, dict[str, Any]]] = [
        ("/auth/invite", {"invite": invite}),
        ("/auth/register", {"email": email, "invite": invite}),
        ("/auth/register/verify-code", {"email": email, "code": "123456", "invite": invite}),
    ]
    for path, body in routes:
        before = records.statistics()
        r = await c.post(path, json=body)
        after = records.statistics()
        work = {k: after.get(k, 0) - before.get(k, 0) for k in after}
        out.append((path, r.status_code, without_request_id(r.content), work))
    return out


async def test_dead_invites_answer_exactly_like_unknown_ones(invite_env: AuthEnv) -> None:
    env = invite_env
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            _boss, tb = await owner(c, env)

            async def new(**kw: Any) -> str:
                return str((await ok(c, tb, CREATE, **kw))["createInvite"]["code"])

            used = await new(m=1)
            r = await complete(c, await verified_token(c, env, "u1@example.com", used), "u1")
            assert r.status_code == 200, r.text
            revoked = await new()
            revoke = "mutation($i: ID!) { revokeInvite(id: $i) }"
            assert (await ok(c, tb, revoke, i=revoked.split(".")[0]))["revokeInvite"] is True
            assert (await ok(c, tb, revoke, i=revoked.split(".")[0]))["revokeInvite"] is False
            expired = await new(e=1)
            live = await new()
            await trio.sleep(1.5)
            invite_id, secret = live.split(".")
            cases = {
                "used": used,
                "revoked": revoked,
                "expired": expired,
                "forged secret": invite_id
                + "."
                + secret[:-2]
                + ("AA" if secret[-2:] != "AA" else "BB"),
                "unknown": "01JZZZZZZZZZZZZZZZZZZZZZZZ." + secret,
                "malformed": "not an invite",
            }
            reference = await _answers(c, env, cases.pop("unknown"))
            assert reference[0][1] == 400 and b"INVALID_INVITE" in reference[0][2]
            for name, invite in cases.items():
                assert await _answers(c, env, invite) == reference, name
            # The live one still works: the comparison was not against a broken server.
            assert (await c.post("/auth/invite", json={"invite": live})).status_code == 200


async def test_two_sign_ups_race_for_the_last_use(invite_env: AuthEnv) -> None:
    env = invite_env
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            _boss, tb = await owner(c, env)
            code = (await ok(c, tb, CREATE, m=1))["createInvite"]["code"]
            tokens = [await verified_token(c, env, f"racer{i}@example.com", code) for i in range(2)]
            results: dict[int, httpx.Response] = {}

            async def go(i: int) -> None:
                results[i] = await complete(c, tokens[i], f"racer{i}")

            async with trio.open_nursery() as nursery:
                for i in range(2):
                    nursery.start_soon(go, i)
            statuses = sorted(r.status_code for r in results.values())
            assert statuses == [200, 400], [r.text for r in results.values()]
            (lost,) = [f"racer{i}" for i, r in results.items() if r.status_code == 400]
            assert results[int(lost[-1])].json()["errors"][0]["extensions"]["code"] == (
                "INVALID_INVITE"
            )
            (listed,) = (await ok(c, tb, LIST))["invites"]
            assert listed["uses"] == 1 and not listed["usable"]
            # The loser's login and address were given back: a sign-up through
            # a fresh invite can take them.
            fresh = (await ok(c, tb, CREATE))["createInvite"]["code"]
            token = await verified_token(c, env, f"{lost}@example.com", fresh)
            assert (await complete(c, token, lost)).status_code == 200


async def test_closed_server_refuses_invites_like_unknown_ones(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    with trio.fail_after(60):
        env = await start_mail_server(nursery, make_config, CHATTO_AUTH_REGISTRATION="closed")
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            assert (await c.get("/api/server")).json()["registration"] == "closed"
            r = await c.post("/auth/register", json={"email": "x@example.com"})
            assert r.status_code == 403
            answers = [
                await _answers(c, env, code)
                for code in ("01JZZZZZZZZZZZZZZZZZZZZZZZ.abc", "01JAAAAAAAAAAAAAAAAAAAAAAA.def")
            ]
            assert answers[0] == answers[1] and answers[0][0][1] == 400
            assert b"INVALID_INVITE" in answers[0][0][2]
        await env.server.stop()


async def test_invite_checks_are_rate_limited(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    with trio.fail_after(60):
        env = await start_mail_server(nursery, make_config, CHATTO_LIMITS_INVITE_PER_IP="3/3600")
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            codes = []
            for i in range(5):
                r = await c.post("/auth/invite", json={"invite": f"01JZZZZZZZZZZZZZZZZZZZZZZ{i}.x"})
                codes.append(r.status_code)
            assert codes == [400, 400, 400, 429, 429]
        await env.server.stop()


async def test_the_last_use_goes_to_one_of_two_processes(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    shared = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": nats_server.url,
        "CHATTO_NATS_TOKEN": nats_server.token,
        "CHATTO_AUTH_REGISTRATION": "invite-only",
    }
    with trio.fail_after(90):
        one = await start_mail_server(
            nursery, make_config, CHATTO_OWNERS_EMAILS=OWNER_EMAIL, **shared
        )
        first = one.server.running.services.config
        # A second process of the same server: same NATS, secret and master key.
        second = make_config(
            **shared,
            CHATTO_AUTH_BCRYPT_COST="4",
            CHATTO_CORE_SECRET_KEY=first.core.secret_key,
            CHATTO_KMS_MASTER_KEY_FILE=str(first.master_key_path),
        )
        two = await start_server(nursery, second)
        async with (
            httpx.AsyncClient(base_url=one.url, timeout=20) as c1,
            httpx.AsyncClient(base_url=two.url, timeout=20) as c2,
        ):
            _boss, tb = await owner(c1, one)
            code = (await ok(c1, tb, CREATE, m=1))["createInvite"]["code"]
            tokens = [await verified_token(c1, one, f"p{i}@example.com", code) for i in range(2)]
            results: list[httpx.Response] = []

            async def go(client: httpx.AsyncClient, i: int) -> None:
                results.append(await complete(client, tokens[i], f"p{i}"))

            async with trio.open_nursery() as race:
                race.start_soon(go, c1, 0)
                race.start_soon(go, c2, 1)
            assert sorted(r.status_code for r in results) == [200, 400], [r.text for r in results]
            (listed,) = (await ok(c2, tb, LIST))["invites"]
            assert listed["uses"] == 1
        await two.stop()
        await one.server.stop()


async def test_an_open_server_takes_invites_too(auth_env: AuthEnv) -> None:
    """Open registration: an invite is optional, and still joins its room."""
    env = auth_env
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            assert (await c.get("/api/server")).json()["registration"] == "open"
            _boss, tb = await owner(c, env)
            room = await ok(c, tb, 'mutation { createRoom(name: "#guests") { id } }')
            room_id = room["createRoom"]["id"]
            code = (await ok(c, tb, CREATE, r=room_id))["createInvite"]["code"]
            r = await complete(c, await verified_token(c, env, "g@example.com", code), "guest")
            assert r.status_code == 200, r.text
            mine = await ok(c, r.json()["token"], "{ myRooms { id } }")
            assert room_id in {x["id"] for x in mine["myRooms"]}
            # A plain sign-up joins only the seeded rooms.
            r = await complete(c, await verified_token(c, env, "p@example.com", None), "plain")
            plain = await ok(c, r.json()["token"], "{ myRooms { id } }")
            assert room_id not in {x["id"] for x in plain["myRooms"]}
