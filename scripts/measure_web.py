"""Measure the web client: first-load bytes, time to first rendered timeline,
and paging back through a long room in headless Chromium.

Starts a complete Chatto in-process (embedded NATS in a temp dir, HTTP on a
loopback port 0), creates one user and one room with N messages (in-process,
through the messaging service), opens the room in Debian's Chromium with a
cookie session, and reports:

- ``first_load_bytes``: JS + CSS the first page load fetched (uncompressed,
  from the Resource Timing entries), and ``static_bytes``: every JS and CSS
  file the package ships (the bound if every lazy view is opened);
- ``first_timeline_ms``: from navigation start to the first painted timeline
  (the client's ``chatto:first-timeline`` performance mark), median of runs;
- ``scrollback``: scrolling to the top until the room's first message shows:
  wall time, pages fetched, and the most message nodes ever in the DOM (the
  timeline is windowed, so it stays bounded whatever N is).

Run: ``.venv/bin/python scripts/measure_web.py`` (``--messages 10000`` by
default; ``--smoke`` for CI); ``--json PATH`` writes the report.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import trio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from actors.ids import new_id
from actors.users.actor import CreateUser
from chatto.config import Config, load_config
from chatto.initcmd import write_initial_config
from chatto.server import Running, serve_chatto
from tests.browser import Page, chromium, open_page

STATIC = Path(__file__).resolve().parents[1] / "chatto" / "web" / "static"
BUDGET = 300 * 1024


def make_config(tmp: Path) -> Config:
    path = tmp / "chatto.toml"
    write_initial_config(path)
    env = {
        "CHATTO_WEBSERVER_PORT": "0",
        "CHATTO_AUTH_BCRYPT_COST": "4",
        "CHATTO_LOGGING_LEVEL": "warning",
    }
    return load_config(path, environ=env)


async def seed(running: Running, messages: int) -> tuple[str, str, str]:
    """One user, one room, ``messages`` posts; (room id, cookie value, user id)."""
    services = running.services
    user_id = new_id()
    pw_hash = await services.accounts.hasher.hash("a long enough password")
    done = await services.actors.ask(
        "user", user_id, CreateUser("reader", "Reader", "reader@example.com", pw_hash)
    )
    await services.projector.wait_for(done.last_seq)
    room = await services.messaging.create_room(user_id, "long-room", "10,000 messages", "")
    counter = iter(range(messages))

    async def worker() -> None:
        for i in counter:
            await services.messaging.post(user_id, room.id, f"Message number {i} of {messages}")

    async with trio.open_nursery() as nursery:
        for _ in range(8):
            nursery.start_soon(worker)
    user = services.directory.get(user_id)
    assert user is not None
    _sid, set_cookie, _csrf = await services.authn.new_cookie_session(user)
    cookie = set_cookie[1].decode().split(";")[0].split("=", 1)[1]
    return room.id, cookie, user_id


async def first_timeline(page: Page, url: str) -> dict[str, Any]:
    await page.load(url)
    await page.wait_js("performance.getEntriesByName('chatto:first-timeline').length > 0", 60)
    mark = await page.js("performance.getEntriesByName('chatto:first-timeline')[0].startTime")
    sizes = await page.js(
        "performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".filter((e) => /\\.(js|css)$/.test(new URL(e.name).pathname))"
        ".map((e) => [new URL(e.name).pathname, e.decodedBodySize])"
    )
    return {"ms": mark, "files": dict(sizes)}


async def scroll_back(page: Page, messages: int, within: float) -> dict[str, Any]:
    t0 = time.perf_counter()
    max_nodes, steps = 0, 0
    with trio.fail_after(within):
        while True:
            state = await page.js(
                "(() => { const t = document.querySelector('.room-main .timeline');"
                " t.scrollTop = 0; t.dispatchEvent(new Event('scroll'));"
                " return { nodes: t.querySelectorAll('.msg').length,"
                " first: t.querySelector('.msg .body')?.textContent || '' }; })()"
            )
            steps += 1
            max_nodes = max(max_nodes, state["nodes"])
            if state["first"].startswith(f"Message number 0 of {messages}"):
                break
            await trio.sleep(0.02)
    return {"ms": (time.perf_counter() - t0) * 1000, "steps": steps, "max_message_nodes": max_nodes}


async def measure(messages: int, runs: int) -> dict[str, Any]:
    shutdown = trio.Event()
    with tempfile.TemporaryDirectory(prefix="chatto-web-", ignore_cleanup_errors=True) as tmp:
        config = make_config(Path(tmp))
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_chatto, config, shutdown)
            try:
                t0 = time.perf_counter()
                room_id, cookie, _uid = await seed(running, messages)
                seed_s = time.perf_counter() - t0
                base = running.http_url.replace("127.0.0.1", "localhost")
                url = f"{base}/rooms/{room_id}"
                times, files = [], {}
                async with open_page() as page:
                    await page.viewport(1200, 800)
                    await page.call(
                        "Network.setCookie", name="chatto_session", value=cookie, url=base
                    )
                    # Every run is a first load: no HTTP cache.
                    await page.call("Network.setCacheDisabled", cacheDisabled=True)
                    for _ in range(runs):
                        got = await first_timeline(page, url)
                        times.append(got["ms"])
                        files = got["files"]
                    back = await scroll_back(page, messages, within=max(60.0, messages / 50))
            finally:
                shutdown.set()
                nursery.cancel_scope.deadline = trio.current_time() + 10
    static = sum(p.stat().st_size for p in STATIC.rglob("*") if p.suffix in (".js", ".css"))
    first_load = sum(files.values())
    return {
        "messages": messages,
        "seed_seconds": round(seed_s, 2),
        "first_load_bytes": first_load,
        "first_load_files": files,
        "static_bytes": static,
        "budget_bytes": BUDGET,
        "first_timeline_ms": {
            "median": round(statistics.median(times), 1),
            "min": round(min(times), 1),
            "max": round(max(times), 1),
            "runs": runs,
        },
        "scrollback": {k: round(v, 1) if isinstance(v, float) else v for k, v in back.items()},
        "machine": {"python": platform.python_version(), "cpus": __import__("os").cpu_count()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="500 messages, 2 runs")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    if chromium() is None:
        print("chromium is not installed", file=sys.stderr)
        return 2
    messages, runs = (500, 2) if args.smoke else (args.messages, args.runs)
    report = trio.run(measure, messages, runs)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    over = report["first_load_bytes"] > BUDGET or report["static_bytes"] > BUDGET
    return 1 if over else 0


if __name__ == "__main__":
    sys.exit(main())
