"""A Trio-native ``graphql-transport-ws`` server on the ASGI WebSocket scope.

Ariadne's own WebSocket handlers spawn asyncio tasks, so this module speaks
the protocol itself: connection_init/ack (within a timeout), ping/pong,
subscribe/next/error/complete, with the protocol's close codes (4400 bad
message, 4401 subscribe before ack, 4408 init timeout, 4409 duplicate id,
4429 second init). Each operation runs in the connection's nursery; a
subscriber that falls behind its bounded feed is closed with 1013. An
authenticated connection is closed with 4403 when its credential ends
(``chatto.auth.ends``), after ``myEvents`` had the chance to say
SESSION_TERMINATED.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import trio
from graphql import GraphQLSchema

from chatto.auth.authn import ANONYMOUS
from chatto.auth.ends import Credential
from chatto.errors import BusyError, ChattoError, UnavailableError
from chatto.gql.context import RequestContext
from chatto.gql.execute import RequestError, encode_response, execute, prepare
from chatto.gql.fanout import subscribe_shared
from chatto.http.asgi import Receive, Scope, Send, header
from chatto.services import Services

SUBPROTOCOL = "graphql-transport-ws"
INIT_TIMEOUT = 10.0
MAX_MESSAGE_BYTES = 1024 * 1024
MAX_OPERATIONS = 100
# How long a live stream gets to send SESSION_TERMINATED before we close.
END_GRACE = 0.25


class _Closed(Exception):
    """We closed the socket; unwind the read loop."""


class Connection:
    """One WebSocket: its state, its operations, serialized sends."""

    def __init__(
        self,
        send: Send,
        services: Services,
        schema: GraphQLSchema,
        nursery: trio.Nursery,
        cookie_header: str | None = None,
    ) -> None:
        self._send = send
        self._services = services
        self._schema = schema
        self._nursery = nursery
        self._lock = trio.Lock()
        self._ops: dict[str, trio.CancelScope] = {}
        self.acked = False
        self.closed = False
        self._cookie_header = cookie_header
        self.ctx = RequestContext(services=services, auth=ANONYMOUS, transport="ws")

    async def send_json(self, doc: dict[str, Any]) -> None:
        await self.send_text(json.dumps(doc))

    async def send_text(self, text: str) -> None:
        if self.closed:
            return
        async with self._lock:
            await self._send({"type": "websocket.send", "text": text})

    async def close(self, code: int, reason: str) -> None:
        if self.closed:
            return
        async with self._lock:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        self._nursery.cancel_scope.cancel()

    async def expire_init(self) -> None:
        await trio.sleep(INIT_TIMEOUT)
        if not self.acked:
            await self.close(4408, "Connection initialisation timeout")

    async def on_text(self, text: str) -> None:
        try:
            msg = json.loads(text)
            kind = msg["type"]
        except (ValueError, KeyError, TypeError):
            await self.close(4400, "Invalid message")
            return
        if kind == "connection_init":
            if self.acked:
                await self.close(4429, "Too many initialisation requests")
                return
            try:
                authenticated = await self._authenticate(msg.get("payload"))
            except UnavailableError:
                # The credential could not be checked (NATS down): 1013 is
                # "try again later", unlike 4403, which tells a client to stop.
                await self.close(1013, "Try again later")
                return
            if not authenticated:
                await self.close(4403, "Forbidden")
                return
            auth = self.ctx.auth
            if auth.user is not None:
                try:
                    await self._services.limiter.hit("websockets_per_user", auth.user.id)
                except ChattoError:
                    await self.close(1013, "rate limited")
                    return
                cred = Credential(auth.key, auth.user.id, auth.generation, auth.expires_ms)
                self.ctx.credential = cred
                await self._nursery.start(self._end_with, cred)
            self.acked = True
            await self.send_json({"type": "connection_ack"})
        elif kind == "ping":
            await self.send_json({"type": "pong"})
        elif kind == "pong":
            return
        elif kind == "subscribe":
            await self._on_subscribe(msg)
        elif kind == "complete":
            scope = self._ops.pop(str(msg.get("id")), None)
            if scope is not None:
                scope.cancel()
        else:
            await self.close(4400, f"Unknown message type {str(kind)[:40]!r}")

    async def _end_with(
        self, cred: Credential, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Watch the credential while the socket lives; close the socket when it ends."""
        with self._services.credentials.track(cred):
            task_status.started()
            await cred.wait_ended()
        # A live stream says SESSION_TERMINATED and closes the socket itself
        # (cancelling this task); nothing else runs authenticated meanwhile.
        if self._ops:
            await trio.sleep(END_GRACE)
        await self.close(4403, "Session terminated")

    async def _authenticate(self, payload: Any) -> bool:
        """Credentials from the init payload, else the upgrade request's cookie.

        A payload that carries a credential which does not validate is refused
        rather than silently downgraded to anonymous.
        """
        authorization = None
        if isinstance(payload, dict):
            raw = payload.get("authorization") or payload.get("Authorization")
            if isinstance(raw, str) and raw:
                authorization = raw
        authn = self._services.authn
        if authorization is not None:
            self.ctx.auth = await authn.from_headers(authorization, None)
            return self.ctx.auth.user is not None
        # No Set-Cookie can reach the browser here, so the cookie is not rotated.
        self.ctx.auth = await authn.from_headers(None, self._cookie_header, rotate=False)
        return True

    async def _on_subscribe(self, msg: dict[str, Any]) -> None:
        if not self.acked:
            await self.close(4401, "Unauthorized")
            return
        op_id = msg.get("id")
        if not isinstance(op_id, str) or not op_id:
            await self.close(4400, "Subscribe message needs an id")
            return
        if op_id in self._ops:
            await self.close(4409, f"Subscriber for {op_id[:64]} already exists")
            return
        if len(self._ops) >= MAX_OPERATIONS:
            await self.send_json(
                {"id": op_id, "type": "error", "payload": [{"message": "too many operations"}]}
            )
            return
        scope = trio.CancelScope()
        self._ops[op_id] = scope
        self._nursery.start_soon(self._run_operation, op_id, msg.get("payload"), scope)

    async def _run_operation(self, op_id: str, payload: Any, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await self._operation(op_id, payload)
            except RequestError as exc:
                err = {"message": exc.message, "extensions": {"code": exc.code}}
                await self.send_json({"id": op_id, "type": "error", "payload": [err]})
            except BusyError:
                await self.close(1013, "slow consumer")
            except ChattoError as exc:
                if exc.code == "SESSION_TERMINATED":
                    await self.close(4403, "Session terminated")
                    return
                err = {"message": exc.message, "extensions": {"code": exc.code}}
                await self.send_json({"id": op_id, "type": "error", "payload": [err]})
            finally:
                self._ops.pop(op_id, None)

    async def _operation(self, op_id: str, payload: Any) -> None:
        limits = self._services.config.graphql
        op = await prepare(self._schema, payload, limits)
        head = '{"id":' + json.dumps(op_id) + ',"type":"next","payload":'
        if op.kind != "subscription":
            result = await execute(self._schema, self.ctx, op)
            await self.send_text(head + encode_response(result, limits.max_response_bytes) + "}")
            await self.send_json({"id": op_id, "type": "complete"})
            return
        stream = await subscribe_shared(self._schema, self.ctx, op)
        if isinstance(stream, list):
            await self.send_json({"id": op_id, "type": "error", "payload": stream})
            return
        async with aclosing(stream):
            async for payload in stream:
                await self.send_text(head + payload + "}")
        await self.send_json({"id": op_id, "type": "complete"})


async def handle_graphql_ws(
    scope: Scope, receive: Receive, send: Send, services: Services, schema: GraphQLSchema
) -> None:
    """Serve one WebSocket connection until either side closes it."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    if SUBPROTOCOL not in scope.get("subprotocols", ()):
        await send(
            {"type": "websocket.close", "code": 4406, "reason": "Subprotocol not acceptable"}
        )
        return
    await send({"type": "websocket.accept", "subprotocol": SUBPROTOCOL})
    async with trio.open_nursery() as nursery:
        conn = Connection(send, services, schema, nursery, header(scope, b"cookie"))
        nursery.start_soon(conn.expire_init)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    data = message.get("bytes") or b""
                    if len(data) > MAX_MESSAGE_BYTES:
                        await conn.close(1009, "Message too big")
                        break
                    text = data.decode("utf-8", errors="replace")
                if len(text) > MAX_MESSAGE_BYTES:
                    await conn.close(1009, "Message too big")
                    break
                await conn.on_text(text)
        except ChattoError as exc:
            await conn.close(1011, exc.code)
        conn.closed = True
        nursery.cancel_scope.cancel()
