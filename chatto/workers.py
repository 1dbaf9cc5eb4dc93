"""``chatto run --workers N``: N server processes on one port and one NATS.

The process started by the operator is worker 0. It fixes the ports (a
configured 0 becomes a free port, so every worker binds the same one),
serves like a single process, and starts workers 1..N-1 as child
``chatto run`` processes with the same config file plus environment
overrides: the same HTTP port (all listeners set SO_REUSEPORT; the kernel
spreads new connections over them) and, when worker 0 runs the embedded
NATS, that NATS as an external one. Each worker owns its own sockets; live
events reach every worker through NATS as in a cluster.

A worker that exits while the server runs is restarted with back-off; one
that keeps exiting (more than ``MAX_RESTARTS`` within ``RESTART_WINDOW``)
stops the whole server gracefully with an error. On shutdown the children
get SIGTERM and are waited for (their graceful stop still writes to NATS)
before worker 0 stops, and with it the embedded NATS.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections import deque
from pathlib import Path

import attrs
import trio

from chatto.bus.embedded import free_port
from chatto.config import Config
from chatto.errors import ConfigError, StartupError

log = logging.getLogger(__name__)

CHILD_ENV = "CHATTO_WORKER_INDEX"
MAX_RESTARTS = 5
RESTART_WINDOW = 60.0
MAX_BACKOFF = 30.0


def is_child() -> bool:
    """Whether this process was started by worker 0 (it starts no workers itself)."""
    return CHILD_ENV in os.environ


@attrs.frozen
class Plan:
    """Worker 0's config (ports fixed) and what each child adds to its environment."""

    config: Config
    env: dict[str, str]


def plan(config: Config, workers: int) -> Plan:
    """Fix the ports and build the children's environment overrides."""
    w, n = config.webserver, config.nats
    if w.tls.enabled:
        raise ConfigError(
            "workers > 1 does not work with [webserver.tls]: terminate TLS in a proxy "
            "in front of Chatto, or run one process per host"
        )
    port = w.port or free_port(w.host)
    webserver = attrs.evolve(w, port=port, workers=workers)
    env = {"CHATTO_WEBSERVER_PORT": str(port), "CHATTO_WEBSERVER_WORKERS": str(workers)}
    nats = n
    if n.embedded.enabled:
        nats_port = n.embedded.port or free_port(n.embedded.host)
        nats = attrs.evolve(n, embedded=attrs.evolve(n.embedded, port=nats_port))
        host = f"[{n.embedded.host}]" if ":" in n.embedded.host else n.embedded.host
        env |= {
            "CHATTO_NATS_EMBEDDED_ENABLED": "false",
            "CHATTO_NATS_URL": f"nats://{host}:{nats_port}",
            # The same secret the child reads from the config file anyway.
            "CHATTO_NATS_TOKEN": n.embedded.token,
        }
    return Plan(attrs.evolve(config, webserver=webserver, nats=nats), env)


@attrs.define
class Workers:
    """Children 1..N-1 of worker 0: started, restarted, stopped."""

    path: Path
    count: int
    env: dict[str, str]
    grace: float
    failed: str = ""

    def command(self) -> list[str]:
        return [sys.executable, "-m", "chatto", "run", "-c", str(self.path)]

    async def serve(self, shutdown: trio.Event, children_gone: trio.Event) -> None:
        """Run the children until ``shutdown``; set ``children_gone`` once all exited."""
        try:
            async with trio.open_nursery() as nursery:
                for index in range(1, self.count):
                    nursery.start_soon(self._keep, index, shutdown)
        finally:
            children_gone.set()

    async def _keep(self, index: int, shutdown: trio.Event) -> None:
        exits: deque[float] = deque()
        env = os.environ | self.env | {CHILD_ENV: str(index)}
        while not shutdown.is_set():
            code = await self._run_once(index, env, shutdown)
            if shutdown.is_set():
                return
            now = trio.current_time()
            exits.append(now)
            while exits and exits[0] < now - RESTART_WINDOW:
                exits.popleft()
            if len(exits) > MAX_RESTARTS:
                self.failed = f"worker {index} exited {len(exits)} times within {RESTART_WINDOW:g}s"
                log.error("%s (last status %s); stopping the server", self.failed, code)
                shutdown.set()
                return
            backoff = min(2.0 ** (len(exits) - 1), MAX_BACKOFF)
            log.error("worker %d exited with status %s; restarting in %gs", index, code, backoff)
            with trio.move_on_after(backoff):
                await shutdown.wait()

    async def _run_once(self, index: int, env: dict[str, str], shutdown: trio.Event) -> int | None:
        # Its own session: a terminal's Ctrl-C reaches worker 0 only, which
        # then stops the children once (a second signal means "stop now").
        proc = await trio.lowlevel.open_process(self.command(), env=env, start_new_session=True)
        log.info("worker %d started (pid %d)", index, proc.pid)
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._stop_on, shutdown, proc)
                await proc.wait()
                nursery.cancel_scope.cancel()
        finally:
            with trio.CancelScope(shield=True):
                await self._reap(proc)
        return proc.returncode

    async def _stop_on(self, shutdown: trio.Event, proc: trio.Process) -> None:
        await shutdown.wait()
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)

    async def _reap(self, proc: trio.Process) -> None:
        """SIGTERM, the grace period (plus start-up slack), then SIGKILL."""
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            with trio.move_on_after(self.grace + 20):
                await proc.wait()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def check_failed(workers: Workers | None) -> None:
    if workers is not None and workers.failed:
        raise StartupError(workers.failed)
