"""The one ASGI application: routes, lifespan and the error boundary.

Routes: ``/api/graphql`` (HTTP and WebSocket), ``/healthz``, ``/readyz``,
``/api/server``, ``/api/playground`` (and its ``/api/playground/assets/``),
``/api/schema.graphql`` (the SDL), and the web client (``/``, ``/static/*``
and its client routes: ``chatto.web``).
Every response carries the security headers from ``chatto.http.asgi``. A
``ChattoError`` a route lets through answers with its own status and code
(a NATS outage is 503 ``UNAVAILABLE``); an unexpected exception becomes a
500 with a generic body (details go to the log, never to the client).
"""

from __future__ import annotations

import logging

import trio
from graphql import GraphQLSchema

from chatto import __version__
from chatto.errors import ChattoError
from chatto.gql.schema import load_sdl
from chatto.http.asgi import (
    Message,
    Receive,
    Scope,
    Send,
    header,
    respond,
    respond_chatto_error,
    respond_error,
    respond_json,
    serve_lifespan,
)
from chatto.http.assets import handle_attachment, handle_avatar
from chatto.http.auth_routes import handle_auth
from chatto.http.cors import CorsPolicy
from chatto.http.graphql_http import handle_graphql_http
from chatto.http.graphql_ws import handle_graphql_ws
from chatto.http.logo import handle_logo
from chatto.http.metrics_route import METRICS_PATH, handle_metrics, instrument
from chatto.http.oauth_routes import handle_oauth
from chatto.http.playground_route import ASSET_PREFIX, PAGE_PATH, Playground
from chatto.logs import REQUEST_ID, new_request_id
from chatto.ratelimit import is_trusted
from chatto.server_settings import LOGO_PATH
from chatto.services import Services
from chatto.web.routes import WebClient

log = logging.getLogger(__name__)

GRAPHQL_PATH = "/api/graphql"
SDL_PATH = "/api/schema.graphql"
GET_ONLY = ("/healthz", "/readyz", "/api/server", PAGE_PATH, SDL_PATH, METRICS_PATH)


class ChattoApp:
    """ASGI callable bound to the running services."""

    def __init__(self, services: Services, schema: GraphQLSchema, shutdown: trio.Event) -> None:
        self.services = services
        self.schema = schema
        # Set when the server stops: open WebSockets are closed (1001) at once.
        self.shutdown = shutdown
        # The schema as written (descriptions, directives such as @public and
        # @requires), which introspection does not show; public like introspection.
        self._sdl = load_sdl().encode()
        w = services.config.webserver
        self.cors = CorsPolicy.build(w.url, w.port, w.allowed_origins)
        self.web = WebClient(w.url)
        self._playground = Playground.load()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await serve_lifespan(receive, send)
            return
        # Everything done for this request or socket (tasks it starts, worker
        # threads) logs this id; the client gets it as X-Request-Id.
        rid = self._request_id(scope)
        token = REQUEST_ID.set(rid)
        try:
            send = _with_request_id(send, rid)
            if kind == "websocket":
                await self._websocket(scope, receive, send)
            elif kind == "http":
                await self._http_boundary(scope, receive, send)
        finally:
            REQUEST_ID.reset(token)

    def _request_id(self, scope: Scope) -> str:
        """A fresh id, or the one a trusted proxy sent (so both logs share it)."""
        client = scope.get("client")
        trusted = self.services.config.webserver.trusted_proxies
        if client and is_trusted(str(client[0]), trusted):
            return new_request_id(header(scope, b"x-request-id"))
        return new_request_id()

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin")
        if scope["path"] != GRAPHQL_PATH:
            await send({"type": "websocket.close", "code": 4404})
        elif not self.cors.allows(origin):
            # Same check as CORS, before the upgrade is accepted (HTTP 403).
            await send({"type": "websocket.close", "code": 4403})
        else:
            scope = self._credentials_for(scope, origin)
            await handle_graphql_ws(scope, receive, send, self.services, self.schema, self.shutdown)

    async def _http_boundary(self, scope: Scope, receive: Receive, send: Send) -> None:
        origin = header(scope, b"origin")
        scope = self._credentials_for(scope, origin)
        send = self._with_cors(instrument(self.services.metrics, scope, send), origin)
        try:
            if scope["method"] == "OPTIONS":
                await respond(send, 204, b"", b"text/plain", self.cors.preflight_headers(origin))
                return
            await self._http(scope, receive, send)
        except ChattoError as exc:
            # A route that let one through (a NATS outage while reading a
            # credential, say): its own status and code, not a 500.
            log.warning("%s %s: %s", scope["method"], scope["path"], exc.code)
            await respond_chatto_error(send, exc)
        except Exception:
            # The request id is in this log line and in the client's error body.
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            await respond_error(send, 500, "INTERNAL", "internal server error")

    def _credentials_for(self, scope: Scope, origin: str | None) -> Scope:
        """Drop cookies sent from origins not trusted with credentials."""
        if self.cors.credentials_allowed(origin):
            return scope
        headers = [(k, v) for k, v in scope.get("headers", ()) if k.lower() != b"cookie"]
        return {**scope, "headers": headers}

    def _with_cors(self, send: Send, origin: str | None) -> Send:
        extra = self.cors.headers(origin)
        if not extra:
            return send

        async def cors_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return cors_send

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == GRAPHQL_PATH:
            if method not in ("GET", "POST"):
                await respond_error(send, 405, "METHOD_NOT_ALLOWED", "use GET or POST")
                return
            await handle_graphql_http(scope, receive, send, self.services, self.schema)
        elif path.startswith("/auth/"):
            await handle_auth(scope, receive, send, self.services)
        elif path.startswith("/oauth/"):
            await handle_oauth(scope, receive, send, self.services)
        elif path.startswith("/assets/attachments/"):
            await handle_attachment(scope, send, self.services)
        elif path.startswith("/assets/avatars/"):
            await handle_avatar(scope, send, self.services)
        elif path == LOGO_PATH:
            await handle_logo(scope, send, self.services)
        elif (
            path not in GET_ONLY
            and not path.startswith(ASSET_PREFIX)
            and self.web.claims(path, method)
        ):
            await self.web.serve(scope, send)
        elif method != "GET" and (path in GET_ONLY or path.startswith(ASSET_PREFIX)):
            await respond_error(send, 405, "METHOD_NOT_ALLOWED", "use GET")
        elif path == "/healthz":
            await respond_json(send, 200, {"status": "ok"})
        elif path == "/readyz":
            checks = await self.services.readiness()
            ready = all(checks.values())
            stats = self.services.bridge.stats
            doc = {
                "ready": ready,
                "checks": checks,
                "nats": {"disconnects": stats.disconnects, "reconnects": stats.reconnects},
                "cache": self.services.messaging.rooms.cache_statistics(),
            }
            await respond_json(send, 200 if ready else 503, doc)
        elif path == "/api/server":
            await respond_json(send, 200, self._server_info())
        elif path == PAGE_PATH:
            await self._playground.serve_page(scope, send)
        elif path.startswith(ASSET_PREFIX):
            await self._playground.serve_asset(scope, send)
        elif path == SDL_PATH:
            await respond(send, 200, self._sdl, b"text/plain; charset=utf-8")
        elif path == METRICS_PATH:
            await handle_metrics(scope, send, self.services)
        else:
            await respond_error(send, 404, "NOT_FOUND", "no such route")

    def _server_info(self) -> dict[str, object]:
        cfg = self.services.config
        return {
            "name": self.services.server_view.name,
            "description": self.services.server_view.description,
            "version": __version__,
            "url": cfg.webserver.url,
            "graphql": GRAPHQL_PATH,
            "authMethods": ["password"],
            "authorizeUrl": cfg.webserver.url.rstrip("/") + "/oauth/authorize",
            "registrationOpen": cfg.auth.registration == "open",
            "registration": cfg.auth.registration,
        }


def _with_request_id(send: Send, rid: str) -> Send:
    """Add ``X-Request-Id`` to the response (or to the WebSocket upgrade answer)."""
    extra = (b"x-request-id", rid.encode())

    async def send_with_id(message: Message) -> None:
        if message["type"] in ("http.response.start", "websocket.accept"):
            message = {**message, "headers": [*message.get("headers", []), extra]}
        await send(message)

    return send_with_id
