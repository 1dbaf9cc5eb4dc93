"""The WebSocket operation core both GraphQL subprotocols share.

Owns what must not differ between ``graphql-transport-ws`` and the older
``graphql-ws``: authentication at ``connection_init`` (a credential in the
payload, else the upgrade request's cookie), the per-user connection rate
limit, the credential watch (a socket whose credential ends is closed with
4403, ``chatto.auth.ends``), the init timeout, the operation limits (id
shape, ``MAX_OPERATIONS``), running operations (queries, mutations, and
subscriptions through the shared fan-out), closes for slow consumers and
server shutdown, and serialized sends (on the lean path,
``chatto.http.ws_server``, sends only queue: a queue past its bound raises
``SlowConsumer`` and closes the socket with 1013). The adapters (``ws_transport.py``,
``ws_apollo.py``) only translate message names and shapes; how results are
framed is their ``Framing``.

Close codes, the same in both protocols (the older one defines none):
4400 bad message, 4401 operation before the ack, 4403 refused or session
terminated, 4408 init timeout, 4409 duplicate id, 4429 second init, 1001
server shutting down, 1009 message too big, 1011 server error, 1013 try
again later (NATS unreachable, rate limited, slow consumer).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Awaitable, Callable
from contextlib import aclosing
from typing import Any, Protocol

import trio
from graphql import GraphQLSchema

from chatto.auth.authn import ANONYMOUS
from chatto.auth.ends import Credential
from chatto.errors import BusyError, ChattoError, UnavailableError
from chatto.gql.context import RequestContext
from chatto.gql.execute import RequestError, encode_response, execute, prepare
from chatto.gql.fanout import subscribe_shared
from chatto.gql.live_fast import FAST_LANE, FastLane
from chatto.http.asgi import Message, Send
from chatto.http.ws_frames import FRAMES
from chatto.http.ws_server import FRAME_KEY, SlowConsumer
from chatto.services import Services

MAX_MESSAGE_BYTES = 1024 * 1024
MAX_OPERATIONS = 100
# How long a live stream gets to send SESSION_TERMINATED before we close.
END_GRACE = 0.25

Refusal = tuple[int, str]


class Framing(Protocol):
    """How one subprotocol frames an operation's results."""

    def result_head(self, op_id: str) -> str:
        """JSON text up to a result payload; the core appends the payload and ``}``."""
        ...

    def errors(self, op_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
        """The message for an operation that failed before it produced a result."""
        ...

    def complete(self, op_id: str) -> dict[str, Any]:
        """The message for an operation that has no more results."""
        ...


def error_doc(message: str, code: str) -> dict[str, Any]:
    return {"message": message, "extensions": {"code": code}}


class WsSession:
    """One authenticated (or anonymous) WebSocket and its operations."""

    def __init__(
        self,
        send: Send,
        services: Services,
        schema: GraphQLSchema,
        nursery: trio.Nursery,
        framing: Framing,
        protocol: str,
        cookie_header: str | None = None,
        *,
        coalesced: bool = False,
        push: Callable[[bytes], bool] | None = None,
    ) -> None:
        self._send = send
        # The lean path's synchronous queueing of an encoded frame: what the
        # live fast lane writes with (chatto/gql/live_fast.py).
        self._push = push
        # Sends queue without waiting for the socket (chatto.http.ws_server):
        # no lock needed to keep frames whole and in order.
        self._coalesced = coalesced
        self.protocol = protocol
        self._metrics = services.metrics
        self._services = services
        self._schema = schema
        self._nursery = nursery
        self._framing = framing
        self._lock = trio.Lock()
        self._ops: dict[str, trio.CancelScope] = {}
        self.acked = False
        self.closed = False
        self._closing = False  # set before the first await of close(): one close only
        self._cookie_header = cookie_header
        self.ctx = RequestContext(services=services, auth=ANONYMOUS, transport="ws")

    # --- sending and closing -------------------------------------------------------
    async def send_json(self, doc: dict[str, Any]) -> None:
        await self.send_text(json.dumps(doc))

    async def send_text(self, text: str, frame: bytes | None = None) -> None:
        """Send one message; ``frame``: the same, already encoded (the lean path uses it)."""
        if self.closed or self._closing:
            return
        message: Message = {"type": "websocket.send", "text": text}
        if frame is not None:
            message[FRAME_KEY] = frame
        try:
            if self._coalesced:
                await self._send(message)
                return
            async with self._lock:
                await self._send(message)
        except SlowConsumer:
            await self.close_slow()

    async def close(self, code: int, reason: str) -> None:
        """Close once (later calls do nothing) and cancel every operation."""
        if self.closed or self._closing:
            return
        self._closing = True
        self._metrics.websocket_closes.labels(self.protocol, str(code)).inc()
        async with self._lock:
            self.closed = True
            await self._send({"type": "websocket.close", "code": code, "reason": reason})
        self._nursery.cancel_scope.cancel()

    async def close_slow(self) -> None:
        """1013: the socket fell behind its live feed (counted once, like the close)."""
        if not (self.closed or self._closing):
            self._metrics.slow_closes.inc()
        await self.close(1013, "Slow consumer")

    def start_soon(self, fn: Callable[..., Awaitable[object]], *args: object) -> None:
        """Run a task for the socket's lifetime (an adapter's keep-alive)."""
        self._nursery.start_soon(fn, *args)

    async def expire_init(self) -> None:
        await trio.sleep(self._services.config.webserver.websocket_init_timeout_seconds)
        if not self.acked:
            await self.close(4408, "Connection initialisation timeout")

    async def close_on(self, shutdown: trio.Event) -> None:
        """Close with 1001 when the server stops, so clients reconnect elsewhere at once.

        Hypercorn itself would keep the socket until its grace period ran out.
        """
        await shutdown.wait()
        await self.close(1001, "Server shutting down")

    # --- connection_init ------------------------------------------------------------
    async def init(self, payload: Any) -> Refusal | None:
        """Authenticate and register the credential; the refusal's close code otherwise.

        The caller sends its protocol's ack (or refusal message) and closes.
        """
        if self.acked:
            return 4429, "Too many initialisation requests"
        try:
            authenticated = await self._authenticate(payload)
        except UnavailableError:
            # The credential could not be checked (NATS down): 1013 is "try
            # again later", unlike 4403, which tells a client to stop.
            return 1013, "Try again later"
        if not authenticated:
            return 4403, "Forbidden"
        auth = self.ctx.auth
        if auth.user is not None:
            try:
                await self._services.limiter.hit("websockets_per_user", auth.user.id)
            except ChattoError:
                return 1013, "Rate limited"
            cred = Credential(auth.key, auth.user.id, auth.generation, auth.expires_ms)
            self.ctx.credential = cred
            await self._nursery.start(self._end_with, cred)
        self.acked = True
        return None

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

    # --- operations ----------------------------------------------------------------
    async def start(self, op_id: Any, payload: Any, *, replace: bool = False) -> None:
        """Start an operation; ``replace``: an id in use stops the old one (graphql-ws)."""
        if not self.acked:
            await self.close(4401, "Unauthorized")
            return
        if not isinstance(op_id, str) or not op_id:
            await self.close(4400, "Operation message needs an id")
            return
        if op_id in self._ops:
            if not replace:
                await self.close(4409, f"Subscriber for {op_id[:64]} already exists")
                return
            self._ops.pop(op_id).cancel()
        if len(self._ops) >= MAX_OPERATIONS:
            too_many = error_doc("too many operations", "TOO_MANY_OPERATIONS")
            await self.send_json(self._framing.errors(op_id, [too_many]))
            return
        scope = trio.CancelScope()
        self._ops[op_id] = scope
        self._nursery.start_soon(self._run_operation, op_id, payload, scope)

    def stop(self, op_id: Any) -> bool:
        """Cancel an operation; whether it was still running."""
        scope = self._ops.pop(str(op_id), None)
        if scope is None:
            return False
        scope.cancel()
        return True

    async def _run_operation(self, op_id: str, payload: Any, scope: trio.CancelScope) -> None:
        with scope:
            try:
                await self._operation(op_id, payload, scope)
            except RequestError as exc:
                await self._fail(op_id, exc.message, exc.code)
            except BusyError:
                await self.close_slow()
            except ChattoError as exc:
                if exc.code == "SESSION_TERMINATED":
                    await self.close(4403, "Session terminated")
                    return
                await self._fail(op_id, exc.message, exc.code)
            finally:
                # A replaced operation must not remove its successor.
                if self._ops.get(op_id) is scope:
                    del self._ops[op_id]

    def _push_result(self, head: str, scope: trio.CancelScope, encoded: str) -> bool:
        """Queue a live result's frame without waiting (the fast lane); False when full.

        Nothing goes out for an operation already stopped (the client's
        ``complete`` cancels its task, which may not have run since).
        """
        if self.closed or self._closing or self._push is None or scope.cancel_called:
            return True
        if not self._push(FRAMES.get(head, encoded)[1]):
            return False
        self._metrics.live_frames.inc()
        return True

    async def _fail(self, op_id: str, message: str, code: str) -> None:
        await self.send_json(self._framing.errors(op_id, [error_doc(message, code)]))

    async def _operation(self, op_id: str, payload: Any, scope: trio.CancelScope) -> None:
        limits = self._services.config.graphql
        try:
            op = await prepare(self._schema, payload, limits)
        except RequestError:
            self._metrics.graphql("ws", None, "invalid")
            raise
        head = self._framing.result_head(op_id)
        if op.kind != "subscription":
            result = await execute(self._schema, self.ctx, op)
            await self.send_text(head + encode_response(result, limits.max_response_bytes) + "}")
            await self.send_json(self._framing.complete(op_id))
            return
        if self._push is not None:
            # This operation's task (and the source it iterates) sees the lane.
            FAST_LANE.set(FastLane(functools.partial(self._push_result, head, scope)))
        stream = await subscribe_shared(self._schema, self.ctx, op)
        self._metrics.graphql("ws", op, "invalid" if isinstance(stream, list) else "ok")
        if isinstance(stream, list):
            await self.send_json(self._framing.errors(op_id, stream))
            return
        active = self._metrics.subscriptions.labels(self.protocol)
        active.inc()
        try:
            async with aclosing(stream):
                async for encoded in stream:
                    if self._coalesced:
                        # Built and encoded once for every socket with this op id.
                        await self.send_text(*FRAMES.get(head, encoded))
                    else:
                        await self.send_text(head + encoded + "}")
                    self._metrics.live_frames.inc()
        finally:
            active.dec()
        await self.send_json(self._framing.complete(op_id))
