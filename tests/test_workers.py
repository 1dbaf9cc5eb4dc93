"""``chatto run --workers 2``: two processes on one port and one NATS, as an operator runs it."""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

import httpx
import pytest
import trio

from chatto.bus.embedded import free_port
from chatto.initcmd import write_initial_config
from chatto.workers import plan
from tests.authflow import login_token, register
from tests.liveclient import live_client
from tests.smtp_sink import SmtpSink
from tests.test_messaging import ok

PW = "a long enough password"
CONNECTIONS = 20


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        out.extend(int(c) for c in text)
    return out


def _chatto_children(pid: int) -> list[int]:
    return [c for c in _children(pid) if b"chatto" in Path(f"/proc/{c}/cmdline").read_bytes()]


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def _tcp(port: int, state: str) -> set[str]:
    """Inodes of loopback TCP sockets with local ``port`` in ``state`` (0A listen, 01 est.)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if int(fields[1].split(":")[1], 16) == port and fields[3] == state:
            found.add(fields[9])
    return found


async def _wait_listening(pids: list[int], port: int) -> None:
    while not all(_socket_inodes(p) & _tcp(port, "0A") for p in pids):
        await trio.sleep(0.1)


async def test_two_workers_share_the_port_and_survive_a_crash(tmp_path: Path) -> None:
    config_path = tmp_path / "chatto.toml"
    write_initial_config(config_path)
    port = free_port("127.0.0.1")
    sink = SmtpSink()
    async with trio.open_nursery() as nursery:
        smtp_port = await nursery.start(sink.serve)
        env = os.environ | {
            "CHATTO_WEBSERVER_PORT": str(port),
            "CHATTO_CORE_DATA_DIR": str(tmp_path / "data"),
            "CHATTO_AUTH_BCRYPT_COST": "4",
            "CHATTO_SMTP_ENABLED": "true",
            "CHATTO_SMTP_HOST": "127.0.0.1",
            "CHATTO_SMTP_PORT": str(smtp_port),
            "CHATTO_SMTP_STARTTLS": "false",
        }
        log = (tmp_path / "server.log").open("wb")
        cmd = [sys.executable, "-m", "chatto", "run", "-c", str(config_path), "--workers", "2"]
        proc = await trio.lowlevel.open_process(cmd, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        try:
            with trio.fail_after(90):
                while not (kids := _chatto_children(proc.pid)):
                    await trio.sleep(0.1)
                await _wait_listening([proc.pid, kids[0]], port)
                async with httpx.AsyncClient(base_url=url, timeout=20) as c:
                    await register(c, sink, "w@example.com", "worker", PW)
                    token = await login_token(c, "worker", PW)
                    async with trio.open_nursery() as clients:
                        lives = []
                        for _ in range(CONNECTIONS):
                            cm = live_client(url, token)
                            lives.append(await clients.start(_hold, cm))
                        # Both processes own some of the sockets (the kernel spreads them).
                        established = _tcp(port, "01")
                        owners = [len(_socket_inodes(p) & established) for p in (proc.pid, kids[0])]
                        assert all(owners), owners
                        post = 'mutation { postMessage(roomId: "general", body: "to all") { id } }'
                        posted = (await ok(c, token, post))["postMessage"]["id"]
                        for live in lives:  # posted on one worker, live on both
                            await live.wait_for(lambda e: e["eventId"] == posted)
                        clients.cancel_scope.cancel()
                # A crashed worker is started again; the other keeps serving new
                # connections (the crashed one's connections die with it).
                os.kill(kids[0], signal.SIGKILL)
                while (again := _chatto_children(proc.pid)) in ([], [kids[0]]):
                    async with httpx.AsyncClient(base_url=url, timeout=20) as fresh:
                        assert (await fresh.get("/healthz")).status_code == 200
                    await trio.sleep(0.1)
                await _wait_listening(again, port)
            proc.send_signal(signal.SIGTERM)
            with trio.fail_after(60):
                assert await proc.wait() == 0
            text = (tmp_path / "server.log").read_text()
            assert "worker 1 exited with status -9; restarting" in text
        finally:
            if proc.returncode is None:
                proc.kill()
            log.close()
            nursery.cancel_scope.cancel()


async def _hold(cm: object, *, task_status: trio.TaskStatus[object]) -> None:
    async with cm as live:  # type: ignore[attr-defined]
        task_status.started(live)
        await trio.sleep_forever()


def test_workers_refuse_tls_and_fix_ports(tmp_path: Path) -> None:
    from chatto.config import load_config
    from chatto.errors import ConfigError

    path = tmp_path / "chatto.toml"
    write_initial_config(path)
    config = load_config(path, environ={"CHATTO_WEBSERVER_PORT": "0"})
    laid_out = plan(config, 3)
    assert laid_out.config.webserver.port > 0 and laid_out.config.webserver.workers == 3
    assert laid_out.env["CHATTO_WEBSERVER_PORT"] == str(laid_out.config.webserver.port)
    nats_port = laid_out.config.nats.embedded.port
    assert laid_out.env["CHATTO_NATS_URL"] == f"nats://127.0.0.1:{nats_port}"
    assert laid_out.env["CHATTO_NATS_EMBEDDED_ENABLED"] == "false"
    tls = load_config(
        path,
        environ={
            "CHATTO_WEBSERVER_TLS_ENABLED": "true",
            "CHATTO_WEBSERVER_TLS_DOMAIN": "chat.example.com",
            "CHATTO_WEBSERVER_TLS_EMAIL": "ops@example.com",
            "CHATTO_WEBSERVER_URL": "https://chat.example.com",
        },
    )
    with pytest.raises(ConfigError, match="TLS"):
        plan(tls, 2)
