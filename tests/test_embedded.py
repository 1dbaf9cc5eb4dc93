"""The embedded nats-server is supervised: killed, it comes back, and /readyz says so."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import httpx
import pytest
import trio

from actors import projector as projector_module
from actors.server import RecordProbe
from chatto.bus.embedded import EmbeddedSettings, open_embedded_nats
from tests.conftest import TOKEN, ServerHandle
from tests.test_projector import Gate


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


async def test_readyz_reports_a_projector_that_stalls_after_start(
    chatto: ServerHandle, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Caught up at start is not enough: a projection stuck later turns /readyz 503."""
    monkeypatch.setattr(projector_module, "STALL_SECONDS", 0.5)
    services = chatto.running.services
    gate = Gate()
    # The running projector gets a read model that blocks while the gate is shut.
    services.projector._preparers.append(gate)
    with trio.fail_after(30):
        async with httpx.AsyncClient(base_url=chatto.url, timeout=5) as c:
            assert (await _ready(c))[0] == 200
            gate.shut()
            done = await services.actors.ask("server", "", RecordProbe(7))
            await gate.waiting.wait()
            assert (await _ready(c))[0] == 200  # behind, but not for long yet
            await trio.sleep(0.7)
            status, checks = await _ready(c)
            assert status == 503 and checks["projections_caught_up"] is False
            assert all(v for k, v in checks.items() if k != "projections_caught_up"), checks
            gate.open.set()
            await services.projector.wait_for(done.last_seq)
            assert (await _ready(c))[0] == 200


async def test_no_restart_once_stopping_and_terminal_signals_do_not_reach_it(
    tmp_path: Path,
) -> None:
    """The child has its own session; stopping set, an exit is final."""
    settings = EmbeddedSettings("127.0.0.1", 0, tmp_path / "nats", TOKEN)
    stopping = trio.Event()
    with trio.fail_after(30):
        async with open_embedded_nats(settings, stopping) as status:
            pid = status.pid
            assert pid is not None
            # A terminal's Ctrl-C goes to our process group, not to the child's.
            assert os.getpgid(pid) == pid != os.getpgid(0)
            stopping.set()
            os.kill(pid, signal.SIGTERM)  # e.g. a service manager signalling the whole unit
            while status.running:
                await trio.sleep(0.01)
            await trio.sleep(0.5)  # longer than the first restart back-off
            assert status.pid is None and status.restarts == 0
