"""``GET /metrics`` (who may scrape) and the HTTP request instrumentation.

Every response is counted (and a failed one logged) by ``instrument``.

Off unless ``metrics.enabled`` (then it answers 404 like any unknown
path). When on, a scrape is allowed from an address in ``metrics.allow``
(the client address as ``webserver.trusted_proxies`` resolves it, so a
reverse proxy on loopback does not open it to everyone behind the proxy)
or with ``Authorization: Bearer <metrics.token>`` from anywhere.

Requests are labelled by route template, never by raw path: attachment and
avatar paths carry room and user ids, and unknown paths are whatever a
client sent.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import time

from prometheus_client import CONTENT_TYPE_LATEST

from chatto.http.asgi import (
    Message,
    Scope,
    Send,
    error_extensions,
    header,
    respond,
    respond_error,
    respond_json,
)
from chatto.http.auth_routes import ROUTES as AUTH_ROUTES
from chatto.http.auth_routes import request_ip
from chatto.metrics import Metrics
from chatto.services import Services

log = logging.getLogger(__name__)

METRICS_PATH = "/metrics"
_EXACT = frozenset(
    {
        "/api/graphql",
        "/api/schema.graphql",
        "/api/server",
        "/api/playground",
        "/assets/server-logo",
        "/healthz",
        "/readyz",
        METRICS_PATH,
        "/oauth/authorize",
        "/oauth/login",
        "/oauth/consent/approve",
        "/oauth/consent/deny",
        "/oauth/token",
        *AUTH_ROUTES,
    }
)
_PREFIXES = (
    ("/assets/attachments/", "/assets/attachments/{id}"),
    ("/assets/avatars/", "/assets/avatars/{id}"),
    ("/api/playground/assets/", "/api/playground/assets/{name}"),
)


def route_template(path: str) -> str:
    """The route a path belongs to, from a fixed set ("other" for anything else)."""
    if path in _EXACT:
        return path
    for prefix, template in _PREFIXES:
        if path.startswith(prefix):
            return template
    return "other"


def instrument(metrics: Metrics, scope: Scope, send: Send) -> Send:
    """A ``send`` that counts the response when its last body chunk goes out.

    Failed requests are also logged (route template, never the raw path) so
    the request id a client quotes leads to a line: server errors at
    WARNING, client errors at DEBUG (anyone can cause those by the thousand).
    """
    route, method = route_template(scope["path"]), scope["method"]
    started = time.perf_counter()
    status = [500]

    async def counting_send(message: Message) -> None:
        if message["type"] == "http.response.start":
            status[0] = int(message["status"])
        await send(message)
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            code, elapsed = status[0], time.perf_counter() - started
            metrics.http_requests.labels(route, method, str(code)).inc()
            metrics.http_seconds.labels(route).observe(elapsed)
            if code >= 400:
                level = logging.WARNING if code >= 500 else logging.DEBUG
                log.log(level, "%s %s answered %d in %.1f ms", method, route, code, elapsed * 1e3)

    return counting_send


def _allowed(scope: Scope, services: Services) -> bool:
    m = services.config.metrics
    try:
        client = ipaddress.ip_address(request_ip(scope, services))
    except ValueError:
        client = None
    if client is not None:
        for entry in m.allow:
            if client in ipaddress.ip_network(entry.strip(), strict=False):
                return True
    if not m.token:
        return False
    given = (header(scope, b"authorization") or "").encode()
    return hmac.compare_digest(given, b"Bearer " + m.token.encode())


async def handle_metrics(scope: Scope, send: Send, services: Services) -> None:
    """Serve the text exposition to allowed scrapers."""
    m = services.config.metrics
    if not m.enabled:
        await respond_error(send, 404, "NOT_FOUND", "no such route")
    elif not _allowed(scope, services):
        if m.token:
            error = {
                "message": "metrics need a bearer token",
                "extensions": error_extensions("UNAUTHENTICATED"),
            }
            challenge = [(b"www-authenticate", b'Bearer realm="metrics"')]
            await respond_json(send, 401, {"errors": [error]}, challenge)
        else:
            await respond_error(send, 403, "FORBIDDEN", "not allowed to read metrics")
    else:
        body = await services.metrics.render(services)
        await respond(send, 200, body, CONTENT_TYPE_LATEST.encode())
