"""Serving the web client: files from the package, the SPA fallback, the CSP.

Files come from ``chatto/web/static`` through ``importlib.resources`` (so an
installed wheel serves them), read once and kept in memory with a strong
ETag. ``/static/<path>`` serves a file; the client's own routes (``/``,
``/rooms/<id>``, ``/me``, ``/admin``, ``/login``, ...) get ``index.html``;
anything else stays a 404 from the app.
Every answer carries a strict CSP: scripts, styles and connections only from
this origin (plus its WebSocket origin), no framing.
"""

from __future__ import annotations

import hashlib
import re
from importlib import resources
from importlib.resources.abc import Traversable

import attrs

from chatto.http.asgi import SECURITY_HEADERS, Scope, Send, header, respond_error

STATIC_PREFIX = "/static/"
# First path segments the client routes on (main.js); others are the server's.
CLIENT_ROUTES = frozenset(
    {
        "",
        "login",
        "signup",
        "invite",
        "forgot",
        "reset-password",
        "browse",
        "me",
        "admin",
        "rooms",
        "notifications",
        "threads",
    }
)
TYPES = {
    "html": b"text/html; charset=utf-8",
    "js": b"text/javascript; charset=utf-8",
    "css": b"text/css; charset=utf-8",
    "svg": b"image/svg+xml",
    "png": b"image/png",
    "ico": b"image/x-icon",
    "json": b"application/json",
    "txt": b"text/plain; charset=utf-8",
}
# A Host header we are willing to echo into the CSP (no spaces, quotes, ';').
_HOST = re.compile(r"[A-Za-z0-9.\-]{1,253}(:[0-9]{1,5})?|\[[0-9A-Fa-f:.]{2,45}\](:[0-9]{1,5})?")
_PATH = re.compile(r"[A-Za-z0-9_\-./]{1,200}")


@attrs.frozen
class StaticFile:
    body: bytes
    content_type: bytes
    etag: bytes


def _load() -> dict[str, StaticFile]:
    files: dict[str, StaticFile] = {}
    root = resources.files("chatto.web").joinpath("static")

    def walk(node: Traversable, prefix: str) -> None:
        for child in node.iterdir():
            name = f"{prefix}{child.name}"
            if child.is_dir():
                walk(child, name + "/")
                continue
            ext = child.name.rsplit(".", 1)[-1] if "." in child.name else "txt"
            body = child.read_bytes()
            etag = b'"' + hashlib.sha256(body).hexdigest()[:20].encode() + b'"'
            files[name] = StaticFile(body, TYPES.get(ext, b"application/octet-stream"), etag)

    walk(root, "")
    return files


def content_security_policy(scope: Scope, https: bool = False) -> bytes:
    """The client's CSP: this origin only, plus its own WebSocket origin.

    ``https``: the public URL is https (TLS may end at a proxy, where the
    request itself arrives as plain http), so the socket is ``wss``.
    """
    host = header(scope, b"host") or ""
    ws = ""
    if _HOST.fullmatch(host):
        ws = f" {'wss' if https or scope.get('scheme') == 'https' else 'ws'}://{host}"
    return (
        "default-src 'self'; script-src 'self'; style-src 'self'; "
        "img-src 'self' blob:; media-src 'self' blob:; font-src 'self'; "
        f"connect-src 'self'{ws}; frame-ancestors 'none'; base-uri 'none'; "
        "form-action 'self'; object-src 'none'"
    ).encode()


class WebClient:
    """Answers GET/HEAD for the client's files and routes."""

    def __init__(self, public_url: str = "") -> None:
        # Read once at start (about 100 KB), never on the serving loop.
        self.files = _load()
        self.https = public_url.lower().startswith("https://")

    def claims(self, path: str, method: str) -> bool:
        """Is this request for the web client (a file or a client route)?"""
        if method not in ("GET", "HEAD"):
            return False
        if path.startswith(STATIC_PREFIX):
            return True
        first = path.lstrip("/").split("/", 1)[0]
        return first in CLIENT_ROUTES and bool(_PATH.fullmatch(path.lstrip("/") or "x"))

    async def serve(self, scope: Scope, send: Send) -> None:
        path: str = scope["path"]
        name = path[len(STATIC_PREFIX) :] if path.startswith(STATIC_PREFIX) else "index.html"
        found = self.files.get(name) if ".." not in name else None
        if found is None or name.startswith("."):
            await respond_error(send, 404, "NOT_FOUND", "no such file")
            return
        extra = [
            (b"etag", found.etag),
            (b"content-security-policy", content_security_policy(scope, self.https)),
            (b"cross-origin-opener-policy", b"same-origin"),
        ]
        # Revalidate every time: file names carry no hash, and a 304 is cheap.
        cache = b"no-cache"
        extra.append((b"cache-control", cache))
        size = len(found.body)
        if header(scope, b"if-none-match") == found.etag.decode():
            await _respond_raw(send, 304, b"", found.content_type, extra, size)
            return
        body = b"" if scope["method"] == "HEAD" else found.body
        await _respond_raw(send, 200, body, found.content_type, extra, size)


async def _respond_raw(
    send: Send, status: int, body: bytes, ctype: bytes, extra: list[tuple[bytes, bytes]], size: int
) -> None:
    """Like ``respond``, with our own cache-control instead of its ``no-store``."""
    headers = [(b"content-type", ctype), *SECURITY_HEADERS, *extra]
    if status != 304:
        headers.append((b"content-length", str(size).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
