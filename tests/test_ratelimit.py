"""Abuse limits: shared token buckets, enumeration-safe, proxy-aware."""

from __future__ import annotations

import httpx
import trio

from chatto.ratelimit import client_ip
from tests.authflow import bearer, login_token, register
from tests.conftest import ConfigFactory, NatsProc, start_mail_server, start_server
from tests.smtp_sink import SmtpSink
from tests.test_messaging import gql

PW = "a long enough password"


async def mail_server(
    nursery: trio.Nursery, make_config: ConfigFactory, **env: str
) -> tuple[str, SmtpSink]:
    started = await start_mail_server(nursery, make_config, **env)
    return started.url, started.sink


async def attempt(c: httpx.AsyncClient, login: str, ip: str | None = None) -> httpx.Response:
    headers = {"x-forwarded-for": ip} if ip else {}
    return await c.post(
        "/auth/login", json={"login": login, "password": "wrong!pass"}, headers=headers
    )


def test_client_ip_only_trusts_configured_proxies() -> None:
    assert client_ip("10.0.0.5", "6.6.6.6", []) == "10.0.0.5"
    assert client_ip("10.0.0.5", "6.6.6.6", ["10.0.0.0/8"]) == "6.6.6.6"
    # A client-supplied entry left of a trusted hop is not believed past the first untrusted one.
    assert client_ip("10.0.0.5", "1.1.1.1, 6.6.6.6, 10.0.0.7", ["10.0.0.0/8"]) == "6.6.6.6"
    assert client_ip("10.0.0.5", "garbage", ["10.0.0.0/8"]) == "garbage"


async def test_eleventh_attempt_refused_per_ip_known_and_unknown_alike(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    url, sink = await mail_server(
        nursery,
        make_config,
        CHATTO_LIMITS_LOGIN_PER_IP="10/300",
        CHATTO_LIMITS_LOGIN_PER_ACCOUNT="100/300",
        CHATTO_WEBSERVER_TRUSTED_PROXIES="127.0.0.1/32",
    )
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "known@example.com", "known", PW)
            for who, ip in (("known", "203.0.113.1"), ("nobody-here", "203.0.113.2")):
                for _ in range(10):
                    assert (await attempt(c, who, ip)).status_code == 401
                r = await attempt(c, who, ip)
                assert r.status_code == 429, who
                assert int(r.headers["retry-after"]) >= 1
                assert r.json()["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            # Another address is unaffected, and the right password still works from it.
            assert (await attempt(c, "known", "198.51.100.9")).status_code == 401
            r = await c.post(
                "/auth/login",
                json={"login": "known", "password": PW},
                headers={"x-forwarded-for": "198.51.100.9"},
            )
            assert r.status_code == 200


async def test_per_account_limit_and_spoofed_forwarding_ignored(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    url, _sink = await mail_server(
        nursery,
        make_config,
        CHATTO_LIMITS_LOGIN_PER_IP="10/300",
        CHATTO_LIMITS_LOGIN_PER_ACCOUNT="10/300",
    )
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            # No trusted proxies: a fresh X-Forwarded-For per request changes nothing.
            for i in range(10):
                assert (await attempt(c, f"user{i}", f"192.0.2.{i}")).status_code == 401
            assert (await attempt(c, "user99", "192.0.2.200")).status_code == 429


async def test_two_processes_share_one_budget(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    env = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": nats_server.url,
        "CHATTO_NATS_TOKEN": nats_server.token,
        "CHATTO_LIMITS_LOGIN_PER_ACCOUNT": "10/300",
        "CHATTO_AUTH_BCRYPT_COST": "4",
    }
    with trio.fail_after(60):
        config = make_config(**env)  # the same secrets on every process, as deployed
        one = await start_server(nursery, config)
        two = await start_server(nursery, config)
        async with (
            httpx.AsyncClient(base_url=one.url) as c1,
            httpx.AsyncClient(base_url=two.url) as c2,
        ):
            for i in range(10):
                assert (await attempt(c1 if i % 2 else c2, "shared-target")).status_code == 401
            assert (await attempt(c1, "shared-target")).status_code == 429
            assert (await attempt(c2, "shared-target")).status_code == 429
        await one.stop()
        await two.stop()


async def test_graphql_and_message_budgets(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    url, sink = await mail_server(
        nursery,
        make_config,
        CHATTO_LIMITS_MESSAGES_PER_USER_ROOM="3/60",
        CHATTO_LIMITS_GRAPHQL_PER_USER="12/60",
    )
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "chatty@example.com", "chatty", PW)
            token = await login_token(c, "chatty", PW)
            post = 'mutation { postMessage(roomId: "general", body: "hi") { id } }'
            for _ in range(3):
                assert "errors" not in await gql(c, token, post)
            limited = await gql(c, token, post)
            err = limited["errors"][0]
            assert (
                err["extensions"]["code"] == "RATE_LIMITED" and err["extensions"]["retryAfter"] >= 1
            )
            statuses = []
            for _ in range(10):
                r = await c.post(
                    "/api/graphql", json={"query": "{ viewer { id } }"}, headers=bearer(token)
                )
                statuses.append(r.status_code)
            assert 429 in statuses and statuses[0] == 200
            assert "retry-after" in r.headers


async def test_revoke_token_is_limited_per_address(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    """Anonymous revocations cost a KV read and delete each: bounded like other pre-auth calls."""
    url, sink = await mail_server(nursery, make_config, CHATTO_LIMITS_REVOKE_PER_IP="5/60")
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=20) as c:
            await register(c, sink, "rev@example.com", "rev", PW)
            token = await login_token(c, "rev", PW)
            for i in range(5):
                r = await c.post("/auth/revoke-token", json={"token": f"not-a-token-{i}"})
                assert r.status_code == 200
            r = await c.post("/auth/revoke-token", json={"token": token})
            assert r.status_code == 429 and int(r.headers["retry-after"]) >= 1
            # Refused before anything was read: the real token still works.
            assert (await gql(c, token, "{ viewer { login } }"))["data"]["viewer"]["login"] == "rev"
