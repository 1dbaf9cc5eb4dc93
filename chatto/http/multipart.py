"""GraphQL multipart requests (graphql-multipart-request-spec) for uploads.

Parts: ``operations`` (the usual JSON payload), ``map`` (file part name ->
variable paths like ``variables.file``) and the files. Parsed with the
standard library's MIME parser after the body size check and a part count
(a C-speed count of boundary lines), in a worker thread: the parser is pure
Python with a cost per part (10,000 tiny parts, 0.64 MB, held the event loop
for ~3 s), so only a bounded number of parts reach it, and not on the loop.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

import trio

from chatto.gql.execute import RequestError
from chatto.messaging.attachments import Upload
from chatto.tuning import gc_paused

_THREADS: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("multipart")


def count_parts(content_type: str, body: bytes) -> int:
    """Parts in ``body`` by its boundary lines (an upper bound: no MIME parsing)."""
    head = email.parser.HeaderParser(policy=email.policy.HTTP).parsestr(
        f"Content-Type: {content_type}\r\n\r\n"
    )
    boundary = head.get_param("boundary", header="content-type")
    if not isinstance(boundary, str) or not boundary:
        raise RequestError("multipart body without a boundary")
    # Every part opens with --boundary and the close is --boundary-- .
    return max(0, body.count(b"--" + boundary.encode("latin-1")) - 1)


async def parse_upload(content_type: str, body: bytes, max_parts: int) -> dict[str, Any]:
    """``parse_multipart`` after the part count, in a worker thread."""
    parts = count_parts(content_type, body)
    if parts > max_parts:
        raise RequestError(
            f"a multipart upload may have at most {max_parts} parts", "TOO_MANY_PARTS"
        )
    try:
        limiter = _THREADS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(2)
        _THREADS.set(limiter)
    return await trio.to_thread.run_sync(_parse_off_loop, content_type, body, limiter=limiter)


def _parse_off_loop(content_type: str, body: bytes) -> dict[str, Any]:
    with gc_paused():
        return parse_multipart(content_type, body)


def parse_multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The operations payload with every mapped file put in its variable."""
    head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1")
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
    if not message.is_multipart():
        raise RequestError("malformed multipart body")
    parts: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if isinstance(name, str):
            parts[name] = part
    try:
        payload = json.loads(parts["operations"].get_payload(decode=True))
        mapping = json.loads(parts["map"].get_payload(decode=True))
    except (KeyError, ValueError, TypeError) as exc:
        raise RequestError("multipart uploads need 'operations' and 'map' parts") from exc
    if not isinstance(payload, dict) or not isinstance(mapping, dict):
        raise RequestError("'operations' and 'map' must be JSON objects")
    for file_key, paths in mapping.items():
        file_part: Any = parts.get(str(file_key))
        if file_part is None or not isinstance(paths, list):
            raise RequestError(f"file part {str(file_key)[:32]!r} is missing")
        data = file_part.get_payload(decode=True)
        upload = Upload(
            str(file_part.get_filename() or "file"),
            str(file_part.get_content_type()),
            data if isinstance(data, bytes) else b"",
        )
        for path in paths:
            _put(payload, str(path), upload)
    return payload


def _put(payload: dict[str, Any], path: str, value: Upload) -> None:
    keys = path.split(".")
    if keys[0] != "variables" or len(keys) < 2:
        raise RequestError("uploads can only be mapped into variables")
    target: Any = payload.setdefault("variables", {}) or {}
    payload["variables"] = target
    for key in keys[1:-1]:
        target = target[int(key)] if isinstance(target, list) else target.setdefault(key, {})
    last = keys[-1]
    if isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value
