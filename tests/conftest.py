"""Shared fixtures: a real nats-server per test, configs, a running Chatto.

Each test that needs NATS gets its own ``nats-server`` (JetStream on, a temp
store, a free loopback port, token auth): it is ready in ~20 ms, and a fresh
server keeps tests independent without cleanup code.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import pytest
import trio

from chatto.bus.bridge import NatsBridge, NatsSettings, open_nats_bridge
from chatto.bus.embedded import (
    READY_LINE,
    EmbeddedSettings,
    free_port,
    nats_server_binary,
    write_server_config,
)
from chatto.bus.storage import bootstrap_storage

if TYPE_CHECKING:
    from chatto.config import Config
    from chatto.server import Running

TOKEN = "test-token-0123456789abcdef"


@attrs.define
class NatsProc:
    """A nats-server child process the test controls (kill, restart)."""

    url: str
    token: str
    conf: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.conf)], stderr=subprocess.PIPE
        )
        assert self.proc.stderr is not None
        deadline = time.monotonic() + 10
        for line in self.proc.stderr:
            if READY_LINE in line:
                break
            if time.monotonic() > deadline:
                raise RuntimeError("nats-server did not start")
        os.set_blocking(self.proc.stderr.fileno(), False)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(5)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def nats_server(tmp_path: Path) -> Iterator[NatsProc]:
    port = free_port("127.0.0.1")
    conf = write_server_config(EmbeddedSettings("127.0.0.1", port, tmp_path / "nats", TOKEN), port)
    server = NatsProc(url=f"nats://127.0.0.1:{port}", token=TOKEN, conf=conf)
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def bridge(nats_server: NatsProc) -> AsyncIterator[NatsBridge]:
    async with open_nats_bridge(NatsSettings(nats_server.url, token=nats_server.token)) as b:
        await bootstrap_storage(b)
        yield b


ConfigFactory = Callable[..., "Config"]


@pytest.fixture
def make_config(tmp_path: Path) -> ConfigFactory:
    """Build a Config from a fresh `chatto init` file plus env-style overrides."""
    from chatto.config import load_config
    from chatto.initcmd import write_initial_config

    counter = iter(range(1000))

    def make(**env: Any) -> Config:
        path = tmp_path / f"chatto-{next(counter)}.toml"
        write_initial_config(path)
        environ = {"CHATTO_WEBSERVER_PORT": "0", "CHATTO_ACTORS_IDLE_SECONDS": "30"}
        environ.update({k: str(v) for k, v in env.items()})
        return load_config(path, environ=environ)

    return make


@attrs.define
class ServerHandle:
    running: Running
    shutdown: trio.Event
    cancel: trio.CancelScope
    stopped: trio.Event

    async def stop(self, grace: float = 10) -> None:
        """Graceful shutdown; cancel whatever is left after ``grace`` seconds."""
        self.shutdown.set()
        with trio.move_on_after(grace):
            await self.stopped.wait()
        self.cancel.cancel()

    @property
    def url(self) -> str:
        return self.running.http_url


async def start_server(nursery: trio.Nursery, config: Config) -> ServerHandle:
    """Start a whole Chatto in ``nursery``; stop it with ``handle.shutdown.set()``."""
    from chatto.server import serve_chatto

    shutdown, stopped = trio.Event(), trio.Event()
    scope = trio.CancelScope()

    async def run(*, task_status: trio.TaskStatus[Running] = trio.TASK_STATUS_IGNORED) -> None:
        try:
            with scope:
                await serve_chatto(config, shutdown, task_status=task_status)
        finally:
            stopped.set()

    running: Running = await nursery.start(run)
    return ServerHandle(running, shutdown, scope, stopped)


@pytest.fixture
async def chatto(nursery: trio.Nursery, make_config: ConfigFactory) -> AsyncIterator[ServerHandle]:
    """A running Chatto on embedded NATS with an ephemeral HTTP port."""
    handle = await start_server(nursery, make_config())
    yield handle
    await handle.stop()


OWNER_EMAIL = "boss@example.com"


@attrs.define
class AuthEnv:
    server: ServerHandle
    sink: Any  # tests.smtp_sink.SmtpSink

    @property
    def url(self) -> str:
        return self.server.url


async def start_mail_server(
    nursery: trio.Nursery, make_config: ConfigFactory, **env: str
) -> AuthEnv:
    """A Chatto that mails through a real SMTP sink; bcrypt at its minimum cost."""
    from tests.smtp_sink import SmtpSink

    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    settings = {
        "CHATTO_SMTP_ENABLED": "true",
        "CHATTO_SMTP_HOST": "127.0.0.1",
        "CHATTO_SMTP_PORT": str(port),
        "CHATTO_SMTP_STARTTLS": "false",
        "CHATTO_AUTH_BCRYPT_COST": "4",
        **env,
    }
    return AuthEnv(await start_server(nursery, make_config(**settings)), sink)


@pytest.fixture
async def auth_env(nursery: trio.Nursery, make_config: ConfigFactory) -> AsyncIterator[AuthEnv]:
    """A running Chatto with a real SMTP sink; OWNER_EMAIL is in owners.emails."""
    env = await start_mail_server(nursery, make_config, CHATTO_OWNERS_EMAILS=OWNER_EMAIL)
    yield env
    await env.server.stop()
