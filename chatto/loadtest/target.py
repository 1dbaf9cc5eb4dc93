"""The server under load: our own ``chatto run`` processes, and their CPU and RSS.

Own servers are real child processes (the clients never share their CPU):
the first runs the embedded NATS on a known port, further ones connect to
it as an external NATS with the same config file (same secrets). Rate
limits are off and bcrypt is cheap, since both would only measure setup.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import attrs
import httpx
import trio

from chatto.bus.embedded import free_port
from chatto.initcmd import write_initial_config
from chatto.loadtest.params import Params

READY_SECONDS = 60.0
STOP_SECONDS = 15.0
TICK = os.sysconf("SC_CLK_TCK")


class TargetError(Exception):
    """The server under load could not be started or reached."""


@attrs.define
class Target:
    urls: list[str]
    pids: list[int] = attrs.Factory(list)  # sampled for CPU and RSS
    logs: list[Path] = attrs.Factory(list)


def _env(params: Params, tmp: Path, port: int, nats_port: int, token: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "CHATTO_WEBSERVER_PORT": str(port),
            "CHATTO_WEBSERVER_URL": f"http://127.0.0.1:{port}",
            "CHATTO_CORE_DATA_DIR": str(tmp / "data"),
            "CHATTO_LIMITS_ENABLED": "false",
            "CHATTO_AUTH_BCRYPT_COST": str(params.bcrypt_cost),
            "CHATTO_LOGGING_LEVEL": "warning",
            "CHATTO_NATS_EMBEDDED_PORT": str(nats_port),
            "CHATTO_NATS_EMBEDDED_TOKEN": token,
            # Loopback may scrape (the default allow list): the run reports
            # the hub's counters (hub_counters).
            "CHATTO_METRICS_ENABLED": "true",
        }
    )
    return env


HUB_COUNTERS = ("chatto_hub_delivered_total", "chatto_hub_fast_delivered_total")


async def hub_counters(urls: list[str]) -> dict[str, float]:
    """The live hub's delivery counters summed over the servers' ``/metrics``.

    Empty when a server does not export them (metrics off, an older server).
    """
    totals = dict.fromkeys(HUB_COUNTERS, 0.0)
    try:
        async with httpx.AsyncClient(timeout=10) as http:
            for url in urls:
                text = (await http.get(url + "/metrics")).text
                for line in text.splitlines():
                    name, _, value = line.partition(" ")
                    if name in totals:
                        totals[name] += float(value)
    except (httpx.HTTPError, ValueError):
        return {}
    return totals


def _smtp_env(smtp_port: int) -> dict[str, str]:
    return {
        "CHATTO_SMTP_ENABLED": "true",
        "CHATTO_SMTP_HOST": "127.0.0.1",
        "CHATTO_SMTP_PORT": str(smtp_port),
        "CHATTO_SMTP_STARTTLS": "false",
    }


async def _wait_ready(url: str, proc: trio.Process, log: Path) -> None:
    async with httpx.AsyncClient(timeout=2.0) as http:
        with trio.move_on_after(READY_SECONDS):
            while proc.returncode is None:
                try:
                    if (await http.get(f"{url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await trio.sleep(0.2)
    tail = (await trio.Path(log).read_text(errors="replace")).strip().splitlines()[-5:]
    raise TargetError(f"server at {url} did not become ready: " + " | ".join(tail))


async def _own_process(
    cmd: list[str], env: dict[str, str], log: Path, *, task_status: trio.TaskStatus[trio.Process]
) -> None:
    """Run one server; on cancel: SIGTERM, then SIGKILL after a grace period."""
    with log.open("wb") as out:
        proc = await trio.lowlevel.open_process(
            cmd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            task_status.started(proc)
            await proc.wait()
        finally:
            with trio.CancelScope(shield=True):
                if proc.returncode is None:
                    proc.send_signal(signal.SIGTERM)
                    with trio.move_on_after(STOP_SECONDS):
                        await proc.wait()
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()


async def start_own(nursery: trio.Nursery, params: Params, tmp: Path, smtp_port: int) -> Target:
    """Start ``params.processes`` servers sharing the first one's embedded NATS."""
    config = tmp / "chatto.toml"
    write_initial_config(config)
    nats_port = free_port("127.0.0.1")
    token = os.urandom(16).hex()
    target = Target(urls=[])
    cmd = [sys.executable, "-m", "chatto", "run", "-c", str(config)]
    for i in range(params.processes):
        port = free_port("127.0.0.1")
        env = _env(params, tmp, port, nats_port, token) | _smtp_env(smtp_port)
        if i > 0:
            env |= {
                "CHATTO_NATS_URL": f"nats://127.0.0.1:{nats_port}",
                "CHATTO_NATS_TOKEN": token,
                "CHATTO_NATS_EMBEDDED_ENABLED": "false",
            }
        log = tmp / f"chatto-{i}.log"
        proc = await nursery.start(_own_process, cmd, env, log)
        url = f"http://127.0.0.1:{port}"
        await _wait_ready(url, proc, log)
        target.urls.append(url)
        target.pids.append(proc.pid)
        target.logs.append(log)
    return target


# --- CPU and RSS from /proc ---------------------------------------------------------------


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        for task in os.listdir(f"/proc/{pid}/task"):
            text = Path(f"/proc/{pid}/task/{task}/children").read_text()
            out += [int(c) for c in text.split()]
    except OSError:
        pass
    return out


def _cpu_ticks(pid: int) -> int:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0
    return int(fields[11]) + int(fields[12])  # utime + stime


def _rss_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return "?"


@attrs.define
class ProcSeries:
    """CPU% per interval and RSS of one process, sampled once a second."""

    pid: int
    name: str
    cpu_percent: list[float] = attrs.Factory(list)
    rss_mib: list[float] = attrs.Factory(list)
    _last: tuple[float, int] | None = None

    def sample(self, now: float) -> None:
        ticks = _cpu_ticks(self.pid)
        if self._last is not None and now > self._last[0]:
            secs = (ticks - self._last[1]) / TICK
            self.cpu_percent.append(100.0 * secs / (now - self._last[0]))
        self._last = (now, ticks)
        self.rss_mib.append(_rss_mib(self.pid))


@attrs.define
class Sampler:
    """Samples the servers and their children (the embedded nats-server)."""

    series: dict[int, ProcSeries] = attrs.Factory(dict)
    recording: bool = False

    def watch(self, pids: list[int]) -> None:
        for pid in pids:
            for p in [pid, *_children(pid)]:
                self.series.setdefault(p, ProcSeries(p, _name(p)))

    def latest_cpu(self) -> float:
        return sum(s.cpu_percent[-1] for s in self.series.values() if s.cpu_percent)

    def latest_rss(self) -> float:
        return sum(s.rss_mib[-1] for s in self.series.values() if s.rss_mib)

    async def run(self) -> None:
        while True:
            now = trio.current_time()
            for s in self.series.values():
                s.sample(now)
            await trio.sleep(1.0)

    def reset(self) -> None:
        """Forget setup-time samples: the report covers the load only."""
        for s in self.series.values():
            s.cpu_percent.clear()
            s.rss_mib.clear()
