"""``/api/graphql`` over plain HTTP: POST (JSON or multipart uploads) and GET (queries).

The credential is checked and the rate limit charged from the headers alone,
before the body is read: nobody gets the server to parse a body (JSON, MIME
parts, a GraphQL document) without first paying for it in their own bucket.
Multipart uploads need a signed-in user and their CSRF token up front.
"""

from __future__ import annotations

import json
from urllib.parse import parse_qs

import trio
from graphql import GraphQLSchema

from chatto.auth.authn import AuthResult
from chatto.errors import ChattoError, UnauthenticatedError
from chatto.gql.context import RequestContext
from chatto.gql.execute import Operation, RequestError, encode_response, execute, prepare
from chatto.http.asgi import (
    BodyTooLarge,
    Receive,
    Scope,
    Send,
    discard_body,
    header,
    read_body,
    respond,
    respond_chatto_error,
    respond_error,
)
from chatto.http.auth_routes import request_ip
from chatto.http.multipart import parse_upload
from chatto.logs import current_request_id
from chatto.services import Services

EXECUTION_TIMEOUT = 30.0
JSON_TYPE = b"application/json; charset=utf-8"


def _payload_from_get(scope: Scope) -> dict[str, object]:
    qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    payload: dict[str, object] = {"query": qs.get("query", [""])[0]}
    if "variables" in qs:
        try:
            payload["variables"] = json.loads(qs["variables"][0])
        except ValueError as exc:
            raise RequestError("'variables' is not valid JSON") from exc
    if "operationName" in qs:
        payload["operationName"] = qs["operationName"][0]
    return payload


async def _admit(scope: Scope, services: Services, multipart: bool) -> AuthResult:
    """Authenticate and charge the rate limit from the headers (no body read yet)."""
    auth = await services.authn.from_headers(
        header(scope, b"authorization"), header(scope, b"cookie")
    )
    if multipart:
        if auth.user is None:
            raise UnauthenticatedError("uploads need a signed-in user")
        services.authn.check_csrf(auth, header(scope, b"x-csrf-token"))
    if auth.user is not None:
        await services.limiter.hit("graphql_per_user", auth.user.id)
    else:
        await services.limiter.hit("graphql_per_ip", request_ip(scope, services))
    return auth


async def handle_graphql_http(
    scope: Scope, receive: Receive, send: Send, services: Services, schema: GraphQLSchema
) -> None:
    """Admit, read, check, execute and answer one GraphQL HTTP request."""
    method = scope["method"]
    full_ctype = header(scope, b"content-type") or ""
    ctype = full_ctype.split(";")[0].strip().lower()
    if method == "POST" and ctype not in ("application/json", "multipart/form-data"):
        await respond_error(send, 415, "UNSUPPORTED_MEDIA_TYPE", "send application/json")
        return
    try:
        # Inside the try: a NATS outage while checking the credential is a
        # 503 UNAVAILABLE the client can retry, not an internal error.
        auth = await _admit(scope, services, ctype == "multipart/form-data")
    except ChattoError as exc:
        await discard_body(receive, services.config.webserver.max_body_bytes)
        await respond_chatto_error(send, exc)
        return
    limits = services.config.graphql
    w = services.config.webserver
    try:
        if method == "GET":
            op = await prepare(schema, _payload_from_get(scope), limits)
        elif ctype == "multipart/form-data":
            # The file plus room for the operations and MIME framing.
            body = await read_body(scope, receive, w.max_upload_bytes + 64 * 1024)
            upload = await parse_upload(full_ctype, body, w.max_upload_parts)
            op = await prepare(schema, upload, limits)
            if op.kind != "mutation":
                raise RequestError("multipart requests are for mutations with uploads")
        else:
            body = await read_body(scope, receive, w.max_body_bytes)
            try:
                payload = json.loads(body)
            except ValueError as exc:
                raise RequestError("request body is not valid JSON") from exc
            op = await prepare(schema, payload, limits)
    except BodyTooLarge:
        await discard_body(receive)
        await respond_error(send, 413, "PAYLOAD_TOO_LARGE", "request body is too large")
        return
    except RequestError as exc:
        services.metrics.graphql("http", None, "invalid")
        await respond_error(send, 400, exc.code, exc.message)
        return
    await _run(scope, send, services, schema, op, auth)


async def _run(
    scope: Scope,
    send: Send,
    services: Services,
    schema: GraphQLSchema,
    op: Operation,
    auth: AuthResult,
) -> None:
    method = scope["method"]
    if op.kind == "subscription":
        need = "subscriptions need a WebSocket (graphql-transport-ws or graphql-ws)"
        await respond_error(send, 400, "BAD_REQUEST", need)
        return
    if method == "GET" and op.kind != "query":
        await respond_error(send, 405, "METHOD_NOT_ALLOWED", "mutations need POST")
        return
    try:
        if op.kind == "mutation":
            services.authn.check_csrf(auth, header(scope, b"x-csrf-token"))
    except ChattoError as exc:
        await respond_chatto_error(send, exc)
        return
    ctx = RequestContext(services=services, auth=auth, transport="http")
    if auth.set_cookie is not None:
        ctx.response_headers.append(auth.set_cookie)
    with trio.move_on_after(EXECUTION_TIMEOUT):
        result = await execute(schema, ctx, op)
        rid = current_request_id()
        for error in result.get("errors") or ():
            # This request's own result (never shared), so the id is the caller's.
            error.setdefault("extensions", {})["requestId"] = rid
        try:
            text = encode_response(result, services.config.graphql.max_response_bytes)
        except RequestError as exc:
            await respond_error(send, 400, exc.code, exc.message)
            return
        status = 200 if "data" in result else 400
        await respond(send, status, text.encode(), JSON_TYPE, ctx.response_headers)
        return
    await respond_error(send, 504, "TIMEOUT", "the operation took too long")
