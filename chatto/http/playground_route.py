"""``/api/playground``: GraphiQL served from the package, no third-party requests.

The page (``playground/index.html``), its bootstrap (``playground.js``,
``playground.css``) and the vendored GraphiQL, React and ReactDOM builds
(``playground/vendor/``, versions, hashes and licences in ``vendor/VERSIONS``)
are read from the package once, when the app is built, so a server without
internet shows a working playground and a visitor's browser talks to this
server only.

Assets are served under ``/api/playground/assets/<name>`` from an allow-list:
any other name (``..``, encoded or not, included) is a 404 that never
touches the file system. The page links each asset with ``?v=<content hash>``,
so that URL may be cached for a year; every asset also carries an ETag, and
is sent gzipped to a browser that accepts it (GraphiQL's bundle is 3.5 MB,
0.7 MB gzipped), compressed once, in a worker thread, on first request.
"""

from __future__ import annotations

import gzip
import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable
from urllib.parse import parse_qs

import attrs
import trio

from chatto.errors import ChattoError
from chatto.http.asgi import SECURITY_HEADERS, Scope, Send, header, respond, respond_error

PAGE_PATH = "/api/playground"
ASSET_PREFIX = "/api/playground/assets/"
FILES: Traversable = resources.files("chatto.http").joinpath("playground")

# name in the URL -> (file under playground/, Content-Type)
ASSETS: dict[str, tuple[str, bytes]] = {
    "playground.js": ("playground.js", b"text/javascript; charset=utf-8"),
    "playground.css": ("playground.css", b"text/css; charset=utf-8"),
    "graphiql.min.js": ("vendor/graphiql.min.js", b"text/javascript; charset=utf-8"),
    "graphiql.min.css": ("vendor/graphiql.min.css", b"text/css; charset=utf-8"),
    "react.production.min.js": (
        "vendor/react.production.min.js",
        b"text/javascript; charset=utf-8",
    ),
    "react-dom.production.min.js": (
        "vendor/react-dom.production.min.js",
        b"text/javascript; charset=utf-8",
    ),
}

IMMUTABLE = b"public, max-age=31536000, immutable"
REVALIDATE = b"no-cache"
_ASSET_LINK = re.compile(r'"/api/playground/assets/([^"?]+)"')
# A Host header safe to repeat inside the CSP (a name or [IPv6], optional port).
_HOST = re.compile(r"(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?")


def page_csp(host: str | None) -> bytes:
    """The playground page's Content-Security-Policy.

    Strict, with no ``'unsafe-inline'``: scripts, styles and fonts from this
    server only. ``font-src data:`` because graphiql.min.css embeds its fonts
    as data: URLs. ``connect-src`` names the WebSocket of this same host, for
    subscriptions (browsers without CSP3's ``'self'`` matching ``ws:`` need it).

    One known runtime injection is refused and harmless: when one of
    GraphiQL's dialogs (settings, shortcuts) opens, its scroll lock
    (react-remove-scroll-bar) appends a ``<style>`` to hide the page's
    scrollbar; the page has none, since GraphiQL fills the window. The
    browser reports that as a violation in its console and the dialog works.
    """
    connect = "'self'"
    if host and _HOST.fullmatch(host):
        connect += f" ws://{host} wss://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"font-src 'self' data:; connect-src {connect}; object-src 'none'; base-uri 'none'; "
        "form-action 'self'; frame-ancestors 'none'"
    ).encode()


@attrs.define
class Asset:
    body: bytes
    content_type: bytes
    version: str
    gzipped: bytes | None = None


@attrs.define
class Playground:
    """The page and its assets, in memory."""

    page: bytes
    assets: dict[str, Asset]

    @classmethod
    def load(cls, files: Traversable = FILES) -> Playground:
        """Read every file once; a missing one is a startup error, not a 404 later."""
        assets: dict[str, Asset] = {}
        for name, (rel, ctype) in ASSETS.items():
            body = _read(files, rel)
            assets[name] = Asset(body, ctype, hashlib.sha256(body).hexdigest()[:16])

        def versioned(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in assets:
                raise ChattoError(f"playground page links an unknown asset {name!r}")
            return f'"{ASSET_PREFIX}{name}?v={assets[name].version}"'

        page = _ASSET_LINK.sub(versioned, _read(files, "index.html").decode())
        return cls(page.encode(), assets)

    async def serve_page(self, scope: Scope, send: Send) -> None:
        csp = page_csp(header(scope, b"host"))
        await respond(
            send, 200, self.page, b"text/html; charset=utf-8", [(b"content-security-policy", csp)]
        )

    async def serve_asset(self, scope: Scope, send: Send) -> None:
        asset = self.assets.get(scope["path"][len(ASSET_PREFIX) :])
        if asset is None:
            await respond_error(send, 404, "NOT_FOUND", "no such playground asset")
            return
        query = parse_qs(scope.get("query_string", b"").decode("latin-1"))
        versioned = query.get("v") == [asset.version]
        gz = "gzip" in (header(scope, b"accept-encoding") or "")
        # Each encoding is its own representation, with its own ETag.
        etag = f'"{asset.version}{"-gz" if gz else ""}"'
        headers = [
            (b"content-type", asset.content_type),
            (b"cache-control", IMMUTABLE if versioned else REVALIDATE),
            (b"etag", etag.encode()),
            (b"vary", b"accept-encoding"),
            *SECURITY_HEADERS,
        ]
        if etag in (header(scope, b"if-none-match") or ""):
            await _send(send, 304, headers, b"")
            return
        body = asset.body
        if gz:
            if asset.gzipped is None:
                asset.gzipped = await trio.to_thread.run_sync(_gzip, asset.body)
            body = asset.gzipped
            headers.append((b"content-encoding", b"gzip"))
        headers.append((b"content-length", str(len(body)).encode()))
        await _send(send, 200, headers, body)


def _gzip(body: bytes) -> bytes:
    # mtime=0: the same bytes on every server, as the ETag promises.
    return gzip.compress(body, compresslevel=6, mtime=0)


def _read(files: Traversable, rel: str) -> bytes:
    try:
        return files.joinpath(*rel.split("/")).read_bytes()
    except OSError as exc:
        raise ChattoError(f"cannot read playground file {rel}: {exc.strerror}") from exc


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
