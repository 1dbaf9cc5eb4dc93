"""Probe a `chatto run` started by scripts/check-wheel.sh (standard library only).

Waits for the "listening on" line in the server's log (the port is chosen by
the server), then checks readiness, one GraphQL query, the SDL (package
data), the playground and one of its vendored assets, and the web client
(``/`` and one of its JS modules; package data too).
Exits 0 when all pass; otherwise prints what failed and exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
import urllib.error
import urllib.request

SERVING = re.compile(r"Chatto is listening on (http://[^\s\"]+)")


def wait_for_url(log_path: str, pid: int, deadline: float) -> str:
    while time.monotonic() < deadline:
        try:
            with open(log_path, encoding="utf-8", errors="replace") as f:
                found = SERVING.search(f.read())
        except FileNotFoundError:
            found = None
        if found:
            return found.group(1)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            sys.exit("probe: the server exited before it was serving")
        time.sleep(0.1)
    sys.exit("probe: no 'listening on' line in time")


def fetch(url: str, data: bytes | None = None) -> tuple[int, str, str]:
    headers = {"content-type": "application/json"} if data is not None else {}
    request = urllib.request.Request(url, data=data, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            body = response.read().decode()
            return response.status, response.headers.get("content-type", ""), body
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("content-type", ""), exc.read().decode()


def check(ok: bool, what: str) -> None:
    print(f"  {'ok  ' if ok else 'FAIL'} {what}")
    if not ok:
        sys.exit(1)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--log", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--within", type=float, default=90.0)
    args = parser.parse_args()
    deadline = time.monotonic() + args.within
    base = wait_for_url(args.log, args.pid, deadline)
    status = 0
    while time.monotonic() < deadline:
        status, _, _ = fetch(base + "/readyz")
        if status == 200:
            break
        time.sleep(0.2)
    check(status == 200, f"GET {base}/readyz -> {status}")

    query = json.dumps({"query": "{ server { name version } }"}).encode()
    status, _, body = fetch(base + "/api/graphql", query)
    server = json.loads(body).get("data", {}).get("server") if status == 200 else None
    check(bool(server and server.get("version")), f"POST /api/graphql -> {status} {body[:120]}")

    status, kind, body = fetch(base + "/api/schema.graphql")
    check(status == 200 and "type Query" in body, f"GET /api/schema.graphql -> {status}")

    status, kind, body = fetch(base + "/api/playground")
    check(
        status == 200 and kind.startswith("text/html") and "graphiql" in body.lower(),
        f"GET /api/playground -> {status} {kind}",
    )

    found = re.search(r'src="(/api/playground/assets/graphiql\.min\.js\?v=[0-9a-f]+)"', body)
    check(found is not None, "the playground links its vendored graphiql.min.js")
    assert found is not None
    status, kind, script = fetch(base + found.group(1))
    check(
        status == 200 and kind.startswith("text/javascript") and "window.GraphiQL" in script,
        f"GET {found.group(1)} -> {status} {kind} ({len(script)} chars)",
    )
    status, kind, body = fetch(base + "/")
    check(
        status == 200 and kind.startswith("text/html") and "/static/js/main.js" in body,
        f"GET / (web client) -> {status} {kind}",
    )
    status, kind, body = fetch(base + "/static/js/store.js")
    check(
        status == 200 and kind.startswith("text/javascript") and "export" in body,
        f"GET /static/js/store.js -> {status} {kind}",
    )


if __name__ == "__main__":
    main()
