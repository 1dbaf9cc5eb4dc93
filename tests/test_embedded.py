"""The embedded nats-server is supervised: killed, it comes back, and /readyz says so."""

from __future__ import annotations

import os
import signal

import httpx
import trio

from actors.server import RecordProbe
from tests.conftest import ServerHandle


async def _ready(c: httpx.AsyncClient) -> tuple[int, dict[str, bool]]:
    r = await c.get("/readyz")
    return r.status_code, r.json()["checks"]


async def test_killed_nats_server_is_restarted_and_readyz_follows(chatto: ServerHandle) -> None:
    services = chatto.running.services
    embedded = services.embedded
    assert embedded is not None and embedded.pid is not None
    with trio.fail_after(30):
        await services.actors.ask("server", "", RecordProbe(1))
        async with httpx.AsyncClient(base_url=chatto.url, timeout=5) as c:
            assert (await _ready(c))[0] == 200
            old_pid = embedded.pid
            os.kill(old_pid, signal.SIGKILL)
            seen_not_ready = False
            history: list[tuple[int, dict[str, bool]]] = []
            with trio.move_on_after(25) as waited:
                while True:
                    status, checks = await _ready(c)
                    history.append((status, checks))
                    if status == 503:
                        seen_not_ready = True
                        assert not all(checks.values())
                    elif seen_not_ready:
                        break
                    await trio.sleep(0.02)
            # Which check never recovered (or whether 503 was never seen at all).
            assert not waited.cancelled_caught, (seen_not_ready, history[:3], history[-3:])
            assert embedded.restarts >= 1 and embedded.pid != old_pid
            assert (await c.get("/readyz")).json()["nats"]["reconnects"] >= 1
            # Data written before the crash is still there, and writes work again.
            done = await services.actors.ask("server", "", RecordProbe(2))
            assert done.last_seq >= 2
            # Memory-backed buckets (rate limits, presence) come back too.
            while True:
                r = await c.post("/api/graphql", json={"query": "{ server { streamHead } }"})
                if r.status_code == 200:
                    break
                assert r.json()["errors"][0]["extensions"]["code"] == "UNAVAILABLE"
                await trio.sleep(0.1)
            assert r.json()["data"]["server"]["streamHead"] >= done.last_seq
