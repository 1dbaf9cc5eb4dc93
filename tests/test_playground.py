"""The GraphQL playground: served whole from the package, under a strict CSP.

Over real HTTP against a running Chatto; the browser test (Debian's chromium,
skipped without it) loads the page with every other host unresolvable and
checks GraphiQL renders, talks to /api/graphql and trips no CSP rule.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
import trio

from chatto.http.playground_route import ASSETS
from tests.browser import chromium, open_page
from tests.conftest import ServerHandle

HERE = Path(__file__).resolve().parent.parent / "chatto" / "http" / "playground"
TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}


def strict_csp(host: str) -> dict[str, str]:
    return {
        "default-src": "'self'",
        "script-src": "'self'",
        "style-src": "'self'",
        "img-src": "'self' data:",
        "font-src": "'self' data:",
        "connect-src": f"'self' ws://{host} wss://{host}",
        "object-src": "'none'",
        "base-uri": "'none'",
        "form-action": "'self'",
        "frame-ancestors": "'none'",
    }


def parse_csp(value: str) -> dict[str, str]:
    pairs = (d.strip().partition(" ") for d in value.split(";") if d.strip())
    return {name: rest.strip() for name, _, rest in pairs}


def asset_links(html: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', html)


async def raw_get(handle: ServerHandle, target: str, host: str | None = None) -> tuple[int, str]:
    """One GET with the request target exactly as given (httpx would normalize ``..``)."""
    split = urlsplit(handle.url)
    assert split.hostname is not None and split.port is not None
    stream = await trio.open_tcp_stream(split.hostname, split.port)
    async with stream:
        head = f"GET {target} HTTP/1.1\r\nHost: {host or split.netloc}\r\nConnection: close\r\n\r\n"
        await stream.send_all(head.encode())
        data = b""
        while chunk := await stream.receive_some(65536):
            data += chunk
    status_line, _, rest = data.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), rest


async def test_the_page_loads_only_its_own_assets_under_a_strict_csp(chatto: ServerHandle) -> None:
    with trio.fail_after(20):
        async with httpx.AsyncClient(base_url=chatto.url, timeout=10) as c:
            page = await c.get("/api/playground")
            assert page.status_code == 200
            assert page.headers["content-type"] == "text/html; charset=utf-8"
            assert page.headers["x-content-type-options"] == "nosniff"
            host = urlsplit(chatto.url).netloc
            assert parse_csp(page.headers["content-security-policy"]) == strict_csp(host)
            html = page.text
            assert "http://" not in html and "https://" not in html
            assert "<style" not in html and " style=" not in html
            assert not re.search(r"<script(?![^>]*\ssrc=)", html), "an inline script"
            links = asset_links(html)
            names = sorted(urlsplit(link).path.rsplit("/", 1)[1] for link in links)
            assert names == sorted(ASSETS)
            for link in links:
                path = urlsplit(link).path
                assert path.startswith("/api/playground/assets/"), link
                r = await c.get(link)
                assert r.status_code == 200, link
                assert r.headers["content-type"] == TYPES[Path(path).suffix], link
                assert r.headers["x-content-type-options"] == "nosniff"
                assert r.headers["cache-control"] == "public, max-age=31536000, immutable"
                rel, _ = ASSETS[path.rsplit("/", 1)[1]]
                assert r.content == (HERE / rel).read_bytes(), link
                # Revalidation: the same representation is a 304 with no body.
                again = await c.get(link, headers={"if-none-match": r.headers["etag"]})
                assert again.status_code == 304 and again.content == b""
            # GraphiQL's 3.5 MB bundle goes gzipped to a browser that takes it.
            bundle = next(link for link in links if "graphiql.min.js" in link)
            r = await c.get(bundle, headers={"accept-encoding": "gzip"})
            assert r.headers["content-encoding"] == "gzip"
            assert int(r.headers["content-length"]) < 1_000_000
            plain = await c.get(bundle, headers={"accept-encoding": "identity"})
            assert "content-encoding" not in plain.headers
            assert plain.headers["etag"] != r.headers["etag"]
            assert r.content == plain.content  # httpx decoded it
            # Without the page's ?v= the URL is not immutable: revalidate.
            unversioned = await c.get("/api/playground/assets/playground.js")
            assert unversioned.status_code == 200
            assert unversioned.headers["cache-control"] == "no-cache"


@pytest.mark.parametrize(
    "name",
    [
        "nope.js",
        "VERSIONS",
        "LICENSE.react",
        "index.html",
        "vendor/graphiql.min.js",
        "graphiql.min.js.map",
        "",
        "playground.js/",
        "../app.py",
        "..%2fapp.py",
        "%2e%2e/%2e%2e/http/app.py",
        "%2e%2e%2f%2e%2e%2fconfig.py",
        "..%5c..%5capp.py",
        "vendor/../playground.js",
        "playground.js%00",
    ],
)
async def test_unknown_assets_and_traversal_are_404(chatto: ServerHandle, name: str) -> None:
    with trio.fail_after(10):
        status, rest = await raw_get(chatto, "/api/playground/assets/" + name)
    assert status == 404, (name, rest[:200])
    assert "NOT_FOUND" in rest


async def test_only_get_and_host_header_stays_out_of_the_csp(chatto: ServerHandle) -> None:
    with trio.fail_after(10):
        async with httpx.AsyncClient(base_url=chatto.url, timeout=10) as c:
            assert (await c.post("/api/playground/assets/playground.js")).status_code == 405
            assert (await c.post("/api/playground")).status_code == 405
        status, rest = await raw_get(chatto, "/api/playground", host="x; script-src *")
        assert status == 200
        csp = next(
            line.partition(":")[2].strip()
            for line in rest.split("\r\n")
            if line.lower().startswith("content-security-policy:")
        )
        assert parse_csp(csp)["connect-src"] == "'self'" and "*" not in csp


def test_vendored_files_match_versions() -> None:
    """vendor/VERSIONS names each vendored file with its sha256 and licence file."""
    vendor = HERE / "vendor"
    lines = (vendor / "VERSIONS").read_text().splitlines()
    listed: dict[str, str] = {}
    for i, line in enumerate(lines):
        if line and not line.startswith(("#", " ")):
            listed[line.split()[0]] = lines[i + 1].strip()
    vendored = {rel.split("/", 1)[1] for rel, _ in ASSETS.values() if rel.startswith("vendor/")}
    assert set(listed) == vendored
    for name, sha in listed.items():
        assert hashlib.sha256((vendor / name).read_bytes()).hexdigest() == sha, name
    for package in ("graphiql", "react", "react-dom"):
        assert "MIT License" in (vendor / f"LICENSE.{package}").read_text()


# Every other host fails to resolve: a request leaving for one shows up as a
# failed request to a foreign origin, and GraphiQL would not render.
OFFLINE = ["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1"]
CSP_WATCH = (
    "window.__csp = [];"
    "document.addEventListener('securitypolicyviolation',"
    " e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));"
)
WS_ACK = """new Promise(resolve => {
  const ws = new WebSocket('ws://' + location.host + '/api/graphql', 'graphql-transport-ws');
  ws.onopen = () => ws.send(JSON.stringify({type: 'connection_init'}));
  ws.onmessage = e => { resolve(JSON.parse(e.data).type); ws.close(); };
  ws.onerror = () => resolve('error');
})"""


async def test_graphiql_renders_offline_in_chromium(chatto: ServerHandle) -> None:
    if chromium() is None:
        assert not os.environ.get("CI"), "CI must install Debian's chromium (.ci/run does)"
        pytest.skip("chromium is not installed here")
    origin = chatto.url.rstrip("/")
    with trio.fail_after(90):
        async with open_page(OFFLINE) as page:
            await page.call("Page.addScriptToEvaluateOnNewDocument", source=CSP_WATCH)
            await page.load(origin + "/api/playground")
            rendered = False
            with trio.move_on_after(30):
                while not rendered:
                    rendered = await page.js(
                        "!!document.querySelector('.graphiql-container .graphiql-editors')"
                        " && !document.querySelector('.loading')"
                    )
                    await trio.sleep(0.2)
            assert rendered, await page.js("document.body.innerHTML.slice(0, 500)")
            # GraphiQL asks the server for the schema: over /api/graphql.
            posted = await page.wait_event(
                "Network.responseReceived",
                lambda p: p.get("response", {}).get("url") == origin + "/api/graphql",
            )
            assert posted["response"]["status"] == 200
            # Subscriptions: the CSP lets the page open its WebSocket.
            ack = await page.call(
                "Runtime.evaluate", expression=WS_ACK, awaitPromise=True, returnByValue=True
            )
            assert ack["result"]["value"] == "connection_ack", ack
            assert await page.js("window.__csp") == []
            # The settings dialog opens; its scroll lock's <style> is refused (the
            # one violation GraphiQL 3 trips: chatto/http/playground_route.py).
            await page.js(
                "document.querySelector('[aria-label=\"Open settings dialog\"]').click(); true"
            )
            await trio.sleep(0.5)
            assert await page.js("!!document.querySelector('[role=dialog]')")
            violations = await page.js("window.__csp")
            requests = [
                ev["params"]["request"]["url"]
                for ev in page.events
                if ev.get("method") == "Network.requestWillBeSent"
            ]
    foreign = [u for u in requests if not u.startswith((origin + "/", "data:", "ws://"))]
    assert not foreign, foreign
    unexpected = [v for v in violations if not v.startswith("style-src-elem inline")]
    assert not unexpected, json.dumps(violations)
