"""The per-process session cache: a revocation still ends access everywhere at once.

Two processes on one NATS: a token used on B (so B has its record cached) is
revoked through A; B refuses it on the next request, through the notice. A
record deleted behind every process's back (a notice lost) stops working
once the entry's age runs out, without any notice.
"""

from __future__ import annotations

import httpx
import trio

from chatto.auth.session_cache import SessionCache
from tests.authflow import login_token, register
from tests.conftest import ConfigFactory, NatsProc, start_server
from tests.smtp_sink import SmtpSink
from tests.test_messaging import gql

PW = "a long enough password"
VIEWER = "{ viewer { login } }"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_entries_age_out_and_ended_reads_are_not_put_back() -> None:
    clock = Clock()
    cache = SessionCache(max_age=1.0, max_entries=2, clock=clock)
    cache.put("a", {"u": "1"}, cache.epoch)
    assert cache.get("a") == {"u": "1"}
    clock.now += 1.5
    assert cache.get("a") is None  # too old: read again
    # A read that began before a revocation does not put the record back.
    epoch = cache.epoch
    cache.forget(["a"])
    cache.put("a", {"u": "1"}, epoch)
    assert cache.get("a") is None
    epoch = cache.epoch
    cache.clear()
    cache.put("b", {"u": "2"}, epoch)
    assert cache.get("b") is None
    # Bounded: the oldest entry goes first.
    for key in ("x", "y", "z"):
        cache.put(key, {"u": key}, cache.epoch)
    assert cache.get("x") is None and cache.get("z") == {"u": "z"}
    # What is handed out is a copy: a caller's change does not reach the cache.
    got = cache.get("z")
    assert got is not None
    got["u"] = "changed"
    assert cache.get("z") == {"u": "z"}


async def test_revocation_on_one_process_ends_the_cached_session_on_another(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    sink = SmtpSink()
    smtp_port = await nursery.start(sink.serve)
    env = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": nats_server.url,
        "CHATTO_NATS_TOKEN": nats_server.token,
        "CHATTO_SMTP_ENABLED": "true",
        "CHATTO_SMTP_HOST": "127.0.0.1",
        "CHATTO_SMTP_PORT": str(smtp_port),
        "CHATTO_SMTP_STARTTLS": "false",
        "CHATTO_AUTH_BCRYPT_COST": "4",
    }
    with trio.fail_after(60):
        first = make_config(**env)
        a = await start_server(nursery, first)
        # One server in two processes: the same master key and secrets.
        shared = {
            "CHATTO_KMS_MASTER_KEY_FILE": str(first.master_key_path),
            "CHATTO_CORE_SECRET_KEY": first.core.secret_key,
        }
        b = await start_server(nursery, make_config(**env, **shared))
        cache_b = b.running.services.authn.sessions.cache
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=20) as cb,
        ):
            await register(ca, sink, "c@example.com", "cached", PW)
            token = await login_token(ca, "cached", PW)
            other = await login_token(ca, "cached", PW)
            while not (await gql(cb, token, VIEWER))["data"]:
                await trio.sleep(0.05)  # B has not projected the new account yet
            before = cache_b.statistics().hits
            for _ in range(3):
                assert (await gql(cb, token, VIEWER))["data"]["viewer"]["login"] == "cached"
            hits = cache_b.statistics().hits - before
            assert hits >= 3  # B answered from its cache, not from KV every time
            r = await ca.post("/auth/revoke-token", json={"token": token})
            assert r.status_code == 200
            # The notice was flushed before A answered; B forgets the key on it.
            while cache_b.statistics().forgotten == 0:
                await trio.sleep(0.01)
            refused = await gql(cb, token, VIEWER)
            assert refused["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
            # A record deleted with no notice at all (a lost one): gone from B's
            # cache once the entry's age runs out, whatever B has cached.
            assert (await gql(cb, other, VIEWER))["data"]["viewer"]["login"] == "cached"
            sessions_a = a.running.services.authn.sessions
            key = sessions_a._bearer_key(other)
            assert key is not None
            await sessions_a._records.delete(key)
            while "data" in (answer := await gql(cb, other, VIEWER)) and answer["data"]:
                await trio.sleep(0.1)
            assert answer["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        await a.stop()
        await b.stop()
