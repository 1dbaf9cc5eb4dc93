"""Benchmark: password logins and bearer-token validations per second.

Starts a complete Chatto in-process (embedded NATS in a temp dir, bcrypt at
the configured cost, default 12 = the library default), creates one user,
then measures over real HTTP on loopback:

1. logins: ``POST /auth/login`` (token mode) with C concurrent clients;
2. validations over HTTP: ``{ viewer { id } }`` with a bearer token;
3. validations in-process: ``Authenticator.bearer(token)`` alone (the KV
   read plus the generation check, no HTTP or GraphQL).

Prints a table and writes JSON (default ``bench-results/bench_auth.json``).
Run: ``.venv/bin/python scripts/bench_auth.py`` (``--smoke`` for CI).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.ids import new_id
from actors.users.actor import CreateUser
from chatto.config import load_config
from chatto.initcmd import write_initial_config
from chatto.server import Running, serve_chatto
from chatto.tuning import tune_gc

PASSWORD = "benchmark password"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else 0.0


async def measure(
    op: Callable[[], Awaitable[None]], count: int, concurrency: int
) -> dict[str, float]:
    """Run ``op`` ``count`` times with ``concurrency`` workers; rate and latency."""
    latencies: list[float] = []
    per_worker = max(1, count // concurrency)

    async def worker() -> None:
        for _ in range(per_worker):
            t0 = time.perf_counter()
            await op()
            latencies.append(time.perf_counter() - t0)

    start = time.perf_counter()
    async with trio.open_nursery() as nursery:
        for _ in range(concurrency):
            nursery.start_soon(worker)
    elapsed = time.perf_counter() - start
    return {
        "count": len(latencies),
        "concurrency": concurrency,
        "per_second": round(len(latencies) / elapsed, 1),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 3),
    }


async def create_user(running: Running) -> str:
    services = running.services
    user_id = new_id()
    pw_hash = await services.accounts.hasher.hash(PASSWORD)
    done = await services.actors.ask(
        "user", user_id, CreateUser("bench", "bench", "bench@example.com", pw_hash)
    )
    await services.projector.wait_for(done.last_seq)
    return "bench"


async def run(args: argparse.Namespace) -> dict[str, Any]:
    tmp = Path(tempfile.mkdtemp(prefix="chatto-bench-auth-"))
    path = tmp / "chatto.toml"
    write_initial_config(path)
    env = {
        "CHATTO_WEBSERVER_PORT": "0",
        "CHATTO_AUTH_BCRYPT_COST": str(args.cost),
        "CHATTO_LOGGING_LEVEL": "warning",
    }
    config = load_config(path, environ=env)
    shutdown = trio.Event()
    results: dict[str, Any] = {}
    with trio.fail_after(args.timeout):
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_chatto, config, shutdown)
            tune_gc()
            login = await create_user(running)
            limits = httpx.Limits(max_connections=64)
            async with httpx.AsyncClient(base_url=running.http_url, limits=limits) as c:

                async def do_login() -> None:
                    r = await c.post(
                        "/auth/login", json={"login": login, "password": PASSWORD, "mode": "token"}
                    )
                    r.raise_for_status()

                await do_login()
                results["login_http"] = await measure(do_login, args.logins, args.login_concurrency)
                token = (
                    await c.post(
                        "/auth/login", json={"login": login, "password": PASSWORD, "mode": "token"}
                    )
                ).json()["token"]
                headers = {"authorization": f"Bearer {token}"}

                async def do_viewer() -> None:
                    r = await c.post(
                        "/api/graphql", json={"query": "{ viewer { id } }"}, headers=headers
                    )
                    assert r.json()["data"]["viewer"]["id"]

                results["validate_http_graphql"] = await measure(
                    do_viewer, args.validations, args.concurrency
                )
            authn = running.services.authn

            async def do_validate() -> None:
                assert (await authn.bearer(token)).user is not None

            results["validate_in_process"] = await measure(
                do_validate, args.validations, args.concurrency
            )
            shutdown.set()
    return results


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cost", type=int, default=12, help="bcrypt cost (library default 12)")
    ap.add_argument("--logins", type=int, default=40)
    ap.add_argument("--login-concurrency", type=int, default=4)
    ap.add_argument("--validations", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=32)
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("--json", type=Path, default=Path("bench-results/bench_auth.json"))
    ap.add_argument("--smoke", action="store_true", help="cost 4, few operations (CI)")
    args = ap.parse_args(argv)
    if args.smoke:
        args.cost, args.logins, args.validations = 4, 8, 200
    results = trio.run(run, args)
    print(f"bcrypt cost {args.cost}")
    print(f"{'measure':26} {'per s':>9} {'p50 ms':>9} {'p99 ms':>9} {'conc':>5}")
    for name, r in results.items():
        print(
            f"{name:26} {r['per_second']:>9} {r['p50_ms']:>9} {r['p99_ms']:>9} {r['concurrency']:>5}"
        )
    report = {
        "timestamp": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "python": sys.version.split()[0]},
        "bcrypt_cost": args.cost,
        "results": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"results written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
