"""A 3-node NATS cluster and Chatto OS processes for multi-process tests.

``NatsCluster`` runs three ``nats-server`` nodes clustered on loopback
(client, route and monitoring ports free at start and kept across restarts,
one JetStream store per node, token auth on clients). ``kill`` is SIGKILL;
``restart`` brings the node back on the same ports and store. Readiness is
read from each node's monitoring ``/healthz`` (JetStream current), so no
pipe has to be drained: node logs go to files next to their stores.

``ChattoProc`` runs ``python -m chatto run -c FILE`` as a real process (so
it can be killed with SIGKILL) with the worktree first on ``PYTHONPATH``.
``cluster_config`` renders one config with shared secrets; each process
gets its own copy with its own HTTP port and data dir.

Used by ``tests/test_cluster.py`` and ``scripts/fault_cluster.py``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import attrs

from chatto.bus.embedded import free_port, nats_server_binary
from chatto.crypto.master import encode_key, new_master_key
from chatto.initcmd import render_initial_config

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "cluster-token-0123456789abcdef"
HOST = "127.0.0.1"


def _wait(pred: Any, timeout: float, what: str, step: float = 0.1) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(step)


def http_status(url: str, timeout: float = 2.0) -> tuple[int, dict[str, Any]]:
    """GET ``url``; (status, JSON body or {}); (0, {}) when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, json.loads(r.read() or b"{}")
    except urllib.error.HTTPError as exc:
        try:
            return exc.code, json.loads(exc.read() or b"{}")
        except ValueError:
            return exc.code, {}
    except (OSError, ValueError):
        return 0, {}


@attrs.define
class NatsNode:
    """One clustered nats-server (ports fixed for its whole life)."""

    name: str
    port: int
    cluster_port: int
    http_port: int
    store: Path
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"nats://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def write_conf(self, peers: list[NatsNode], cluster: str) -> Path:
        routes = ", ".join(json.dumps(f"nats-route://{HOST}:{p.cluster_port}") for p in peers)
        conf = "\n".join(
            [
                f"server_name: {self.name}",
                f"listen: {json.dumps(f'{HOST}:{self.port}')}",
                f"http: {json.dumps(f'{HOST}:{self.http_port}')}",
                f"authorization {{ token: {json.dumps(TOKEN)} }}",
                f"jetstream {{ store_dir: {json.dumps(str(self.store))} }}",
                "max_payload: 8MB",
                f"cluster {{ name: {cluster}, listen: {json.dumps(f'{HOST}:{self.cluster_port}')},"
                f" routes: [{routes}] }}",
                "",
            ]
        )
        self.store.mkdir(parents=True, exist_ok=True)
        path = self.store / "node.conf"
        path.write_text(conf)
        return path

    def start(self) -> None:
        self.log = open(self.store / "node.log", "ab")  # noqa: SIM115 (closed in kill/stop)
        self.proc = subprocess.Popen(
            [nats_server_binary(), "-c", str(self.store / "node.conf")],
            stdout=self.log,
            stderr=self.log,
        )

    def healthy(self) -> bool:
        """JetStream on this node is current with the cluster (monitoring /healthz)."""
        status, _ = http_status(f"http://{HOST}:{self.http_port}/healthz", timeout=1)
        return status == 200

    def kill(self) -> None:
        """SIGKILL: no flush, no goodbye to the cluster."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


@attrs.define
class NatsCluster:
    """Three clustered nodes on loopback; ``urls`` for ``nats.url``."""

    nodes: list[NatsNode]
    token: str = TOKEN

    @classmethod
    def create(cls, base: Path, size: int = 3, name: str = "chatto") -> NatsCluster:
        nodes = [
            NatsNode(
                f"n{i + 1}", free_port(HOST), free_port(HOST), free_port(HOST), base / f"n{i + 1}"
            )
            for i in range(size)
        ]
        for node in nodes:
            node.write_conf([p for p in nodes if p is not node], name)
        return cls(nodes)

    @property
    def urls(self) -> str:
        return ",".join(n.url for n in self.nodes)

    def start(self, timeout: float = 30) -> None:
        """Start every node and wait until each reports JetStream healthy."""
        for node in self.nodes:
            node.start()
        self.wait_healthy(timeout)

    def wait_healthy(self, timeout: float = 30) -> None:
        for node in self.nodes:
            if node.running:
                _wait(node.healthy, timeout, f"NATS node {node.name} to be healthy")

    def kill(self, index: int) -> None:
        self.nodes[index].kill()

    def restart(self, *indices: int, timeout: float = 60) -> None:
        """Start killed nodes again on their ports and stores; wait until current.

        All are started before waiting: a node that lost its peers cannot
        become current until enough of them are back.
        """
        for i in indices:
            self.nodes[i].kill()
            self.nodes[i].start()
        for i in indices:
            node = self.nodes[i]
            _wait(node.healthy, timeout, f"NATS node {node.name} to rejoin")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


# --- Chatto processes ----------------------------------------------------------


def set_keys(text: str, values: dict[str, Any]) -> str:
    """Replace ``section.key`` values in a rendered config (every key is present)."""
    out, section, seen = [], "", set()
    for line in text.splitlines():
        header = re.match(r"^\[(.+)\]$", line)
        if header:
            section = header.group(1)
        m = re.match(r"^(\w+) = ", line)
        if m and f"{section}.{m.group(1)}" in values:
            seen.add(f"{section}.{m.group(1)}")
            line = f"{m.group(1)} = {json.dumps(values[f'{section}.{m.group(1)}'])}"
        out.append(line)
    if missing := set(values) - seen:
        raise KeyError(f"not in the rendered config: {sorted(missing)}")
    return "\n".join(out) + "\n"


# The master key file every ChattoProc of a test run gets (one server's processes share it).
SHARED_MASTER_KEY = encode_key(new_master_key())


def cluster_config(cluster: NatsCluster, smtp_port: int, **extra: Any) -> str:
    """One config text (fresh secrets) for every process on ``cluster``."""
    values: dict[str, Any] = {
        "nats.url": cluster.urls,
        "nats.token": cluster.token,
        "nats.replicas": len(cluster.nodes),
        "nats.embedded.enabled": False,
        "auth.bcrypt_cost": 4,
        "limits.enabled": False,
        "smtp.enabled": True,
        "smtp.host": HOST,
        "smtp.port": smtp_port,
        "smtp.starttls": False,
        "logging.level": "warning",
        "webserver.shutdown_grace_seconds": 2.0,
    }
    values.update(extra)
    return set_keys(render_initial_config(), values)


@attrs.define
class ChattoProc:
    """``python -m chatto run`` as a child process with its own port and data dir."""

    name: str
    shared: str
    base: Path
    port: int = 0
    proc: subprocess.Popen[bytes] | None = None
    log: IO[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        """Start (on the same port as before, if any); ``wait_ready`` to wait."""
        self.port = self.port or free_port(HOST)
        self.base.mkdir(parents=True, exist_ok=True)
        path = self.base / "chatto.toml"
        text = set_keys(
            self.shared,
            {"webserver.port": self.port, "webserver.url": self.url, "core.data_dir": "data"},
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(text)
        # Every process of one server needs the same master key (README).
        key = self.base / "chatto.master.key"
        if not key.exists():
            fd = os.open(key, os.O_WRONLY | os.O_CREAT, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(SHARED_MASTER_KEY)
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        env = {k: v for k, v in env.items() if not k.startswith("CHATTO_")}
        self.log = open(self.base / "chatto.log", "ab")  # noqa: SIM115 (closed in kill/stop)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "chatto", "run", "-c", str(path)],
            stdout=self.log,
            stderr=self.log,
            env=env,
            cwd=ROOT,
        )

    def ready(self) -> tuple[int, dict[str, Any]]:
        return http_status(self.url + "/readyz")

    def wait_ready(self, timeout: float = 60) -> None:
        def up() -> bool:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited: {self.log_tail()}")
            return self.ready()[0] == 200

        _wait(up, timeout, f"chatto {self.name} to be ready", step=0.2)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        self._close_log()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._close_log()

    def log_tail(self, lines: int = 30) -> str:
        path = self.base / "chatto.log"
        text = path.read_text(errors="replace") if path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])

    def _close_log(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None


def stream_leader(cluster: NatsCluster, stream: str) -> int | None:
    """Index of the node leading ``stream`` (from any live node's /jsz), or None."""
    for node in cluster.nodes:
        if not node.running:
            continue
        status, doc = http_status(
            f"http://{HOST}:{node.http_port}/jsz?accounts=true&streams=true", timeout=1
        )
        if status != 200:
            continue
        for account in doc.get("account_details") or []:
            for detail in account.get("stream_detail") or []:
                leader = (detail.get("cluster") or {}).get("leader")
                if detail.get("name") == stream and leader:
                    names = [n.name for n in cluster.nodes]
                    return names.index(leader) if leader in names else None
    return None
