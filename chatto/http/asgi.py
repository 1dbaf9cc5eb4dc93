"""Small ASGI helpers: headers, JSON responses, bounded body reads."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from chatto.errors import ChattoError
from chatto.logs import current_request_id

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

SECURITY_HEADERS: list[tuple[bytes, bytes]] = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]


class BodyTooLarge(Exception):
    """The request body exceeds the configured limit (the client's fault)."""


def header(scope: Scope, name: bytes) -> str | None:
    """First value of a request header (names compared lower-case)."""
    for key, value in scope.get("headers", ()):
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def header_lines(scope: Scope, name: bytes) -> list[str]:
    """Every value of a header that may come as several lines, in order."""
    return [
        bytes(value).decode("latin-1")
        for key, value in scope.get("headers", ())
        if key.lower() == name
    ]


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes:
    """Read the whole body, refusing more than ``limit`` bytes."""
    declared = header(scope, b"content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


async def discard_body(receive: Receive, limit: int = 16 * 1024 * 1024) -> None:
    """Read and drop what is left of a refused body (up to ``limit`` bytes).

    Answering 413 while the client is still uploading makes many clients
    report a dropped connection instead of the answer; past ``limit`` the
    connection is simply closed after the answer.
    """
    seen = 0
    while seen < limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        seen += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def serve_lifespan(receive: Receive, send: Send) -> None:
    """ASGI lifespan: nothing to start or stop here (the server owns every resource)."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """Send a complete response with the security headers."""
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"cache-control", b"no-store"),
        *SECURITY_HEADERS,
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def respond_json(
    send: Send, status: int, doc: Any, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()
    await respond(send, status, body, b"application/json; charset=utf-8", extra)


def error_extensions(code: str) -> dict[str, Any]:
    """An error's ``extensions``: its code and the request id, to quote in a report."""
    ext: dict[str, Any] = {"code": code}
    rid = current_request_id()
    if rid is not None:
        ext["requestId"] = rid
    return ext


async def respond_error(send: Send, status: int, code: str, message: str) -> None:
    """A JSON error body in the same shape as GraphQL errors."""
    await respond_json(
        send, status, {"errors": [{"message": message, "extensions": error_extensions(code)}]}
    )


async def respond_chatto_error(send: Send, exc: ChattoError) -> None:
    """An error response for a ``ChattoError``; 429s carry ``Retry-After``."""
    retry = getattr(exc, "retry_after", None)
    doc: dict[str, Any] = {"message": exc.message, "extensions": error_extensions(exc.code)}
    extra: list[tuple[bytes, bytes]] = []
    if retry is not None:
        doc["extensions"]["retryAfter"] = retry
        extra.append((b"retry-after", str(retry).encode()))
    await respond_json(send, exc.http_status, {"errors": [doc]}, extra)
