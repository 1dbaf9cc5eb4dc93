"""The plain-HTTP listener: ACME HTTP-01 answers and redirects to HTTPS.

``ChallengeTokens`` holds the answers of the order in progress; the ACME
worker thread adds and removes them while this app reads them, hence the
lock. Every other request is answered ``301`` to the same path and query on
``https://<webserver.tls.domain>`` (never the request's ``Host``, so the
redirect cannot be pointed elsewhere).
"""

from __future__ import annotations

import logging
import threading

from chatto.http.asgi import Receive, Scope, Send, respond, serve_lifespan

log = logging.getLogger(__name__)

CHALLENGE_PREFIX = "/.well-known/acme-challenge/"


class ChallengeTokens:
    """token -> key authorization, shared by the ACME thread and the listener."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._answers: dict[str, str] = {}

    def put(self, token: str, answer: str) -> None:
        with self._lock:
            self._answers[token] = answer

    def remove(self, token: str) -> None:
        with self._lock:
            self._answers.pop(token, None)

    def get(self, token: str) -> str | None:
        with self._lock:
            return self._answers.get(token)

    def __len__(self) -> int:
        with self._lock:
            return len(self._answers)


class RedirectApp:
    """ASGI app of the plain listener; ``https_port`` is set once HTTPS is bound."""

    def __init__(self, tokens: ChallengeTokens, domain: str, https_port: int) -> None:
        self.tokens = tokens
        self.domain = domain
        self.https_port = https_port

    def location(self, raw_path: bytes, query: bytes) -> bytes:
        port = "" if self.https_port in (443, 0) else f":{self.https_port}"
        target = f"https://{self.domain}{port}".encode() + (raw_path or b"/")
        return target + b"?" + query if query else target

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await serve_lifespan(receive, send)
            return
        if scope["type"] != "http":
            await send({"type": "websocket.close", "code": 1008})
            return
        path: str = scope["path"]
        if path.startswith(CHALLENGE_PREFIX):
            answer = self.tokens.get(path[len(CHALLENGE_PREFIX) :])
            if answer is None:
                await respond(send, 404, b"unknown challenge\n", b"text/plain")
            else:
                await respond(send, 200, answer.encode(), b"text/plain")
            return
        raw_path = bytes(scope.get("raw_path") or path.encode())
        location = self.location(raw_path, bytes(scope.get("query_string", b"")))
        await respond(send, 301, b"", b"text/plain", [(b"location", location)])
