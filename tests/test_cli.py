"""The `chatto` command as an operator meets it: real processes, real ports.

Every failure an operator can fix must be one line on stderr naming the
problem, with a non-zero exit status, and must never print a secret.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from chatto.bus.embedded import free_port

CLI = [sys.executable, "-m", "chatto"]


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    full_env.update(env or {})
    return subprocess.run(
        [*CLI, *args], capture_output=True, text=True, timeout=timeout, env=full_env
    )


def error_line(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [ln for ln in proc.stderr.splitlines() if ln.startswith("chatto: error:")]
    assert len(lines) == 1, proc.stderr
    return lines[0]


def secrets_of(path: Path) -> list[str]:
    out = []
    for line in path.read_text().splitlines():
        if "=" in line and any(k in line for k in ("secret", "token")):
            value = line.split("=", 1)[1].strip().strip('"')
            if len(value) >= 16:
                out.append(value)
    return out


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    path = tmp_path / "chatto.toml"
    proc = run_cli("init", "-c", str(path))
    assert proc.returncode == 0, proc.stderr
    return path


def test_init_writes_private_file_and_refuses_to_overwrite(config_path: Path) -> None:
    assert config_path.stat().st_mode & 0o777 == 0o600
    before = config_path.read_text()
    proc = run_cli("init", "-c", str(config_path))
    assert proc.returncode != 0
    assert "refusing to overwrite" in error_line(proc)
    assert config_path.read_text() == before


def test_malformed_toml(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text("[core\nsecret_key = 'x'\n")
    proc = run_cli("run", "-c", str(path))
    assert proc.returncode == 2
    assert str(path) in error_line(proc)


def test_unknown_key_is_named(config_path: Path) -> None:
    text = config_path.read_text().replace('level = "info"', 'levell = "info"')
    config_path.write_text(text)
    proc = run_cli("run", "-c", str(config_path))
    assert proc.returncode == 2
    assert "logging.levell" in error_line(proc)


def test_missing_secret_is_named_and_no_secret_printed(config_path: Path) -> None:
    text = config_path.read_text()
    secrets = secrets_of(config_path)
    lines = [ln for ln in text.splitlines() if not ln.startswith("cookie_signing_secret")]
    config_path.write_text("\n".join(lines) + "\n")
    proc = run_cli("run", "-c", str(config_path))
    assert proc.returncode == 2
    assert "webserver.cookie_signing_secret" in error_line(proc)
    for s in secrets:
        assert s not in proc.stderr and s not in proc.stdout


def test_missing_config_file_suggests_init(tmp_path: Path) -> None:
    proc = run_cli("run", "-c", str(tmp_path / "absent.toml"))
    assert proc.returncode == 2
    assert "chatto init" in error_line(proc)


def test_port_in_use(config_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("run", "-c", str(config_path), env={"CHATTO_WEBSERVER_PORT": str(port)})
    assert proc.returncode == 1
    line = error_line(proc)
    assert str(port) in line and "in use" in line.lower()


def test_unreachable_external_nats(config_path: Path) -> None:
    port = free_port("127.0.0.1")  # nothing listens there
    env = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": f"nats://user:hunter2pass@127.0.0.1:{port}",
        "CHATTO_NATS_CONNECT_TIMEOUT_SECONDS": "0.5",
    }
    proc = run_cli("run", "-c", str(config_path), env=env)
    assert proc.returncode == 1
    line = error_line(proc)
    assert "cannot connect to NATS" in line and str(port) in line
    assert "hunter2pass" not in proc.stderr


def test_run_serves_and_stops_gracefully_on_sigterm(config_path: Path) -> None:
    port = free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    env["CHATTO_WEBSERVER_PORT"] = str(port)
    proc = subprocess.Popen(
        [*CLI, "run", "-c", str(config_path)], env=env, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1)
                if r.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        stderr = proc.stderr.read() if proc.stderr else ""
        for s in secrets_of(config_path):
            assert s not in stderr
        # The embedded nats-server went down with it.
        data_dir = config_path.parent / "data" / "nats"
        assert data_dir.is_dir()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_json_logs_are_one_object_a_line_without_secrets(config_path: Path) -> None:
    """At debug level, with a password and a secret query sent: JSON lines only, no secret."""
    port = free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    env.update(
        CHATTO_WEBSERVER_PORT=str(port),
        CHATTO_LOGGING_FORMAT="json",
        CHATTO_LOGGING_LEVEL="debug",
    )
    password, secret = "pw-never-logged-0123", "query-secret-never-logged"
    log_path = config_path.parent / "stderr.log"
    # A file, not a pipe: nobody reads a pipe until the end, and debug output fills one.
    with log_path.open("w") as log_file:
        proc = subprocess.Popen([*CLI, "run", "-c", str(config_path)], env=env, stderr=log_file)
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(base + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        login = httpx.post(base + "/auth/login", json={"login": "nobody", "password": password})
        assert login.status_code == 401
        query = '{ server { name(x: "' + secret + '") } }'
        httpx.post(base + "/api/graphql", json={"query": query}, headers={"x-secret": secret})
        missing = httpx.get(base + "/nope")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    stderr = log_path.read_text()
    docs = [json.loads(line) for line in stderr.splitlines()]  # every line is JSON
    assert {"time", "level", "logger", "message"} <= set(docs[0])
    messages = [d["message"] for d in docs]
    assert sum("listening on" in m.lower() or "running on" in m.lower() for m in messages) == 1
    rid = missing.headers["x-request-id"]
    assert any(d.get("request_id") == rid and "404" in d["message"] for d in docs)
    for s in [*secrets_of(config_path), password, secret]:
        assert s not in stderr


def test_ctrl_c_to_the_process_group_stops_cleanly_without_restarting_nats(
    config_path: Path,
) -> None:
    """What a terminal does: SIGINT to the whole foreground process group."""
    port = free_port("127.0.0.1")
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATTO_")}
    env["CHATTO_WEBSERVER_PORT"] = str(port)
    log_path = config_path.parent / "stderr.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [*CLI, "run", "-c", str(config_path)],
            env=env,
            stderr=log_file,
            start_new_session=True,  # its own group, as a shell job would be
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert proc.poll() is None, log_path.read_text()
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "server did not become ready"
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)
        assert proc.wait(30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = log_path.read_text()
    assert "restarting" not in text and "exited (code" not in text, text
    # NATS was still there for the snapshot written on the way out.
    assert "projector snapshot written" in text, text


def test_backup_refuses_plaintext_keys_without_explicit_consent(
    config_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "keys.tar.gz"
    proc = run_cli("backup", "-c", str(config_path), "--include-keys", "-o", str(out))
    assert proc.returncode == 2
    line = error_line(proc)
    assert "--encrypt" in line and "--i-understand-plaintext-keys" in line
    assert not out.exists()
    proc = run_cli(
        "backup",
        "-c",
        str(config_path),
        "--include-keys",
        "--i-understand-plaintext-keys",
        "-o",
        str(out),
    )
    assert proc.returncode == 0, proc.stderr
    assert out.stat().st_mode & 0o777 == 0o600
