"""Log output (text or one JSON object a line) and the request id of a log record.

``logging.format = "json"`` writes each record as one JSON object: ``time``
(UTC, ISO 8601, milliseconds), ``level``, ``logger``, ``message``,
``request_id`` when the record was logged while serving a request, and
``exception`` with the traceback text. Text lines carry ``[request <id>]``
instead. The messages are the same in both formats, so what the log-scan
tests prove (no secrets, no personal data) holds for both.

The request id lives in a context variable set by the ASGI app for each
HTTP request and WebSocket connection: Trio copies the context into tasks
spawned later and into worker threads, so everything done for a request
logs its id. It is answered as ``X-Request-Id`` and put in error bodies, so
a user's report leads to the log lines.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
import time
from contextvars import ContextVar

REQUEST_ID: ContextVar[str | None] = ContextVar("chatto_request_id", default=None)
# What a trusted proxy may hand us as the request id (it ends up in logs).
_ACCEPTABLE_ID = re.compile(r"[A-Za-z0-9._:-]{8,64}")
TEXT_FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
FORMATS = ("text", "json")


def current_request_id() -> str | None:
    return REQUEST_ID.get()


def new_request_id(proposed: str | None = None) -> str:
    """``proposed`` (from a trusted proxy) if it is a plain token, else a fresh id."""
    if proposed is not None and _ACCEPTABLE_ID.fullmatch(proposed):
        return proposed
    return secrets.token_hex(8)


class RequestIdFilter(logging.Filter):
    """Stamps each record with the request id of the task that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        rid = getattr(record, "request_id", None)
        if rid is None:
            return text
        # After the first line: a traceback stays below its message.
        first, sep, rest = text.partition("\n")
        return f"{first} [request {rid}]{sep}{rest}"


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line (newlines are escaped)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "time": _utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", None)
        if rid is not None:
            doc["request_id"] = rid
        if record.exc_info:
            doc["exception"] = self.formatException(record.exc_info)
        if record.stack_info:
            doc["stack"] = self.formatStack(record.stack_info)
        return json.dumps(doc, ensure_ascii=False, default=str)


def _utc(created: float) -> str:
    seconds = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(created))
    return f"{seconds}.{int(created % 1 * 1000):03d}Z"


def formatter(fmt: str) -> logging.Formatter:
    return JsonFormatter() if fmt == "json" else TextFormatter()


def setup_logging(level: str, fmt: str = "text") -> None:
    """Root logging to stderr in ``fmt`` ("text" or "json") at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter(fmt))
    handler.addFilter(RequestIdFilter())
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), handlers=[handler])
