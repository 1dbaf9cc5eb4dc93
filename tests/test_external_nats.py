"""Chatto against an external NATS (embedded server disabled)."""

from __future__ import annotations

import httpx
import trio

from actors.server import SetServerProfile
from tests.conftest import ConfigFactory, NatsProc, start_server


async def test_runs_on_external_nats_and_shares_its_data(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    env = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": nats_server.url,
        "CHATTO_NATS_TOKEN": nats_server.token,
    }
    with trio.fail_after(30):
        first = make_config(**env)
        one = await start_server(nursery, first)
        assert one.running.services.embedded is None
        done = await one.running.services.actors.ask("server", "", SetServerProfile("Shared"))
        # A second process on the same NATS replays what the first one wrote.
        # (with the same master key: every process of one server needs it)
        second = make_config(**env, CHATTO_KMS_MASTER_KEY_FILE=str(first.master_key_path))
        two = await start_server(nursery, second)
        assert two.running.services.server_view.name == "Shared"
        async with httpx.AsyncClient(base_url=two.url) as c:
            r = await c.get("/readyz")
            assert r.status_code == 200 and "embedded_nats_running" not in r.json()["checks"]
            r = await c.post("/api/graphql", json={"query": "{ server { name streamHead } }"})
            assert r.json()["data"]["server"] == {"name": "Shared", "streamHead": done.last_seq}
        await one.stop()
        await two.stop()
