"""CORS and WebSocket origin checks.

Allowed origins: the origin of ``webserver.url``, the local listen port
(``http://localhost:<port>`` and ``http://127.0.0.1:<port>``, for
development) and ``webserver.allowed_origins``. Explicit origins may send
credentials (cookies); ``"*"`` allows any origin without credentials, which
forces token auth. WebSocket upgrades pass the same check before accept.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import attrs

ALLOW_HEADERS = b"authorization, content-type, x-csrf-token"
ALLOW_METHODS = b"GET, POST, OPTIONS"


def origin_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}".lower()


@attrs.frozen
class CorsPolicy:
    explicit: frozenset[str]
    wildcard: bool

    @classmethod
    def build(cls, url: str, port: int, extra: list[str]) -> CorsPolicy:
        origins = {origin_of(url)}
        if port:
            origins |= {f"http://localhost:{port}", f"http://127.0.0.1:{port}"}
        origins |= {origin_of(o) for o in extra if o != "*"}
        return cls(frozenset(origins), "*" in extra)

    def with_port(self, port: int) -> CorsPolicy:
        """The policy once the real listen port is known (port 0 configs)."""
        local = {f"http://localhost:{port}", f"http://127.0.0.1:{port}"}
        return attrs.evolve(self, explicit=self.explicit | local)

    def allows(self, origin: str | None) -> bool:
        """May a browser page from ``origin`` call us (or open a WebSocket)?"""
        return origin is None or origin.lower() in self.explicit or self.wildcard

    def credentials_allowed(self, origin: str | None) -> bool:
        """Cookies count only from explicit origins (or same-origin/non-browser)."""
        return origin is None or origin.lower() in self.explicit

    def headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        if origin is None:
            return []
        if origin.lower() in self.explicit:
            return [
                (b"access-control-allow-origin", origin.encode()),
                (b"access-control-allow-credentials", b"true"),
                (b"vary", b"Origin"),
            ]
        if self.wildcard:
            return [(b"access-control-allow-origin", b"*")]
        return []

    def preflight_headers(self, origin: str | None) -> list[tuple[bytes, bytes]]:
        """What a preflight answer adds to ``headers`` (which every response gets)."""
        if not self.headers(origin):
            return []
        return [
            (b"access-control-allow-methods", ALLOW_METHODS),
            (b"access-control-allow-headers", ALLOW_HEADERS),
            (b"access-control-max-age", b"600"),
        ]
