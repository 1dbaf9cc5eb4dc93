"""GraphQL multipart requests (graphql-multipart-request-spec) for uploads.

Parts: ``operations`` (the usual JSON payload), ``map`` (file part name ->
variable paths like ``variables.file``) and the files. Parsed with the
standard library's MIME parser after the body size check.
"""

from __future__ import annotations

import email.parser
import email.policy
import json
from typing import Any

from chatto.gql.execute import RequestError
from chatto.messaging.attachments import Upload


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
