"""The load test itself: the CI smoke run (zero loss), reuse against a running server."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import httpx
import trio

from chatto.loadtest.params import Params, check, parse
from chatto.loadtest.report import verdict
from tests.authflow import register
from tests.conftest import AuthEnv

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "loadtest.py"


async def run_loadtest(*args: str) -> tuple[int, str]:
    proc = await trio.run_process(
        [sys.executable, str(SCRIPT), *args], capture_stdout=True, capture_stderr=True, check=False
    )
    return proc.returncode, (proc.stdout + proc.stderr).decode(errors="replace")


async def test_smoke_run_passes_with_zero_loss(tmp_path: Path) -> None:
    """The CI mode: own server process, churning clients that resume, every message counted."""
    out = tmp_path / "smoke.json"
    with trio.fail_after(240):
        code, text = await run_loadtest("--smoke", "--quiet", "--chart", "--out", str(out))
    assert code == 0, text
    report = json.loads(out.read_text())
    posts, delivery = report["posts"], report["delivery"]
    assert posts["acked"] == posts["attempted"] == 60
    assert delivery["lost"] == 0 and report["problems"] == []
    assert delivery["expected"] > 0
    assert delivery["live"] + delivery["resumed"] == delivery["expected"]
    # Churn really happened and reconnecting clients recovered what they missed.
    assert report["clients"]["reconnects"] > 0
    assert delivery["latency"]["count"] == delivery["live"]
    assert any(name.startswith("nats-server") for name in report["server"])
    assert "PASS" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "password" not in json.dumps(report["parameters"])
    # The default subscription is a real client's: every live message had its body and author.
    assert report["parameters"]["shape"] == "full"
    assert "live: message without body or author" not in report["clients"]["errors"]
    # Posts went over the posters' live sockets (as the web client sends them);
    # one whose socket churned away first was sent again over HTTP and stored once.
    assert posts["via"] == "ws"
    assert delivery["unacked"] == 0


async def test_reuses_existing_users_on_a_running_server(auth_env: AuthEnv, tmp_path: Path) -> None:
    """--url: users that already exist are logged in (no SMTP sink needed), tokens kept."""
    password = "load test password"
    async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
        for i in range(4):
            await register(c, auth_env.sink, f"lt{i}@example.com", f"lt{i}", password)
    out, state = tmp_path / "ext.json", tmp_path / "state.json"
    args = ["--url", auth_env.url, "--users", "4", "--rooms", "2", "--rate", "10"]
    args += ["--duration", "1", "--churn", "0", "--quiet", "--out", str(out), "--state", str(state)]
    args += ["--p99-budget-ms", "10000"]  # a shared test server: correctness, not speed
    with trio.fail_after(120):
        code, text = await run_loadtest(*args)
    assert code == 0, text
    report = json.loads(out.read_text())
    assert report["delivery"]["lost"] == 0 and report["posts"]["acked"] == 10
    # Two members per room, every message to both: 10 posts, 20 deliveries.
    assert report["delivery"]["expected"] == 20
    assert state.stat().st_mode & 0o777 == 0o600
    assert len(json.loads(state.read_text())[auth_env.url]) == 4


def _report(
    achieved: float, p99: float, incomplete: int = 0, offered: float = 200.0
) -> dict[str, Any]:
    return {
        "parameters": {"min_rate_share": 0.95, "p99_budget_ms": 100.0, "rate": 200.0},
        "posts": {
            "failed": 0,
            "acked": 10,
            "offered_per_s": offered,
            "achieved_per_s": achieved,
            "in_flight_bound_waits": 0,
        },
        "delivery": {"lost": 0, "latency": {"p99_ms": p99, "count": 10}},
        "clients": {"errors": {"live: message without body or author": incomplete}},
        "loadgen_cpu_percent": 50,
    }


def test_a_run_that_falls_behind_fails_even_without_loss() -> None:
    assert verdict(_report(achieved=195.0, p99=99.0)) == []
    assert "below 95% of the 200.0/s offered" in verdict(_report(achieved=100.0, p99=50.0))[0]
    assert "over the 100 ms budget" in verdict(_report(achieved=200.0, p99=8300.0))[0]
    assert "without body or author" in verdict(_report(200.0, 50.0, incomplete=3))[0]
    # Answers so slow that the generator could not even offer the rate asked for.
    slow = verdict(_report(achieved=97.0, p99=50.0, offered=97.3))
    assert len(slow) == 1 and "offered only 97.3 of the 200 posts/s" in slow[0]


def test_hot_room_preset_and_shapes() -> None:
    hot = parse(["--hot-room", "--users", "20"])
    assert (hot.rooms, hot.posters, hot.in_flight, hot.shape) == (1, 5, 20, "full")
    custom = parse(["--hot-room", "--users", "100", "--posters", "10", "--in-flight", "50"])
    assert (custom.rooms, custom.posters, custom.in_flight) == (1, 10, 50)
    assert parse(["--shape", "bare"]).shape == "bare"
    assert (parse([]).post_via, parse(["--post-via", "http"]).post_via) == ("ws", "http")
    assert "posters" in check(Params(users=5, rooms=1, posters=6))


def test_parameters_refuse_remote_targets_and_nonsense() -> None:
    assert "loopback" in check(Params(url="http://192.0.2.1:4000"))
    assert check(Params(url="http://192.0.2.1:4000", allow_remote=True)) == ""
    assert check(Params(url="http://127.0.0.1:4000")) == ""
    assert "rooms" in check(Params(users=5, rooms=6))
    assert "--processes" in check(Params(url="http://127.0.0.1:1", processes=2))
    assert "churn" in check(Params(churn=1.5))


async def test_two_server_processes_share_one_nats(tmp_path: Path) -> None:
    """--processes 2: users spread over both; every message reaches members on either."""
    out = tmp_path / "two.json"
    with trio.fail_after(240):
        code, text = await run_loadtest("--smoke", "--processes", "2", "--quiet", "--out", str(out))
    assert code == 0, text
    report = json.loads(out.read_text())
    assert report["delivery"]["lost"] == 0 and report["posts"]["acked"] == 60
    assert report["target"].count("http://127.0.0.1") == 2
    assert sum(name.startswith("python") for name in report["server"]) == 2
