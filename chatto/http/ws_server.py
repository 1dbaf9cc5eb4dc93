"""Chatto's own WebSocket server for ``/api/graphql`` (the lean write path).

Through ASGI one ``websocket.send`` is one frame and one write; here the
GraphQL socket's frames go to a ``FrameWriter`` that writes all pending
frames in one ``send_all`` (``chatto.http.ws_frames``). The application is
the same ASGI app with the same ``receive``/``send`` shapes, so the origin
check, request id, authentication, limits, credential ends and shutdown
(``ChattoApp``, ``WsSession``) run unchanged; what this module owns is what
Hypercorn's ``WSStream`` did: the 101 answer (or 403 when the app closes
before accepting, 500 when it returns without either), message assembly
with the size bound (1009), pings answered, the closing handshake. Two
additions: a ``websocket.send`` may carry the frame already encoded
(``FRAME_KEY``, from ``FrameCache``), and a send past the socket's queue
bound raises ``SlowConsumer`` (the session closes with 1013). No extension
(permessage-deflate) is negotiated: frames are encoded once for every
socket. The listener (``chatto.http.listener``) decides which connections
come here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import unquote

import attrs
import h11
import trio
from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Message, Ping
from wsproto.utilities import LocalProtocolError, generate_accept_token, split_comma_header

from chatto.errors import BusyError
from chatto.http.asgi import Message as AsgiMessage
from chatto.http.asgi import Scope
from chatto.http.ws_frames import Flusher, FrameWriter, WriteStats, text_frame

FRAME_KEY = "chatto.frame"  # a websocket.send's pre-encoded frame (bytes)
COALESCED = "chatto.coalesced"  # scope extension: sends queue and never wait for the socket
MAX_RECV = 1 << 16
# After our close frame: how long the peer gets to read the queue and answer.
CLOSE_WAIT = 2.0

App = Callable[
    [Scope, Callable[[], Awaitable[AsgiMessage]], Callable[[AsgiMessage], Awaitable[None]]],
    Awaitable[None],
]


class SlowConsumer(BusyError):
    """The socket's unwritten frames passed their bound (the reader is too slow)."""


@attrs.frozen
class WsLimits:
    max_message_bytes: int
    send_buffer_bytes: int
    send_buffer_frames: int


def is_websocket_upgrade(request: h11.Request) -> bool:
    """A valid RFC 6455 opening handshake (what Hypercorn's ``Handshake.is_valid`` checks)."""
    if request.method != b"GET" or request.http_version != b"1.1":
        return False
    headers = {name: value for name, value in request.headers}
    connection = [t.lower() for t in split_comma_header(headers.get(b"connection", b""))]
    return (
        "upgrade" in connection
        and headers.get(b"upgrade", b"").lower() == b"websocket"
        and headers.get(b"sec-websocket-version") == b"13"
        and b"sec-websocket-key" in headers
    )


def _status(code: int, reason: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    lines = [b"HTTP/1.1 %d %s" % (code, reason), *(k + b": " + v for k, v in headers)]
    return b"\r\n".join(lines) + b"\r\n\r\n"


class WsConnection:
    """One upgraded connection: ASGI ``receive``/``send`` over wsproto and a FrameWriter."""

    def __init__(
        self,
        stream: trio.SocketStream,
        request: h11.Request,
        trailing: bytes,
        limits: WsLimits,
        stats: WriteStats,
        addresses: tuple[Any, Any],
        flusher: Flusher,
    ) -> None:
        self._stream = stream
        self._request = request
        self._limits = limits
        self._trailing = trailing
        self._writer = FrameWriter(
            stream,
            limits.send_buffer_bytes,
            limits.send_buffer_frames,
            stats,
            stream.socket.fileno(),
            flusher,
        )
        self._ws = Connection(ConnectionType.SERVER, extensions=[])
        self._inbound_send, self._inbound = trio.open_memory_channel[AsgiMessage](4)
        self._inbound_send.send_nowait({"type": "websocket.connect"})
        self._state = "handshake"  # -> "connected" -> "closed"
        self._peer_gone = trio.Event()
        self._nursery: trio.Nursery | None = None
        self.scope = self._scope(addresses)

    def _scope(self, addresses: tuple[Any, Any]) -> Scope:
        path, _, query = self._request.target.partition(b"?")
        headers = [(bytes(k), bytes(v)) for k, v in self._request.headers]
        offered = [
            p for k, v in headers if k == b"sec-websocket-protocol" for p in split_comma_header(v)
        ]
        return {
            "type": "websocket",
            "asgi": {"spec_version": "2.3", "version": "3.0"},
            "scheme": "ws",
            "http_version": "1.1",
            "path": unquote(path.decode("ascii", errors="replace")),
            "raw_path": path,
            "query_string": query,
            "root_path": "",
            "headers": headers,
            "client": addresses[0],
            "server": addresses[1],
            "state": {},
            "subprotocols": offered,
            # ``push``: queue an encoded frame from synchronous code (the live
            # fast lane, chatto/gql/live_fast.py); False when past the bound.
            "extensions": {COALESCED: {"push": self.push_frame}},
        }

    async def serve(self, app: App) -> None:
        """Run ``app`` on this connection, then finish the closing handshake and close."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self._writer.serve)
                await app(self.scope, self.receive, self.send)
                # Nobody reads any more: the reader must not wait to hand over
                # a message while the peer's close is still to be read.
                self._inbound.close()
                await self._finish()
                nursery.cancel_scope.cancel()
        finally:
            self._inbound.close()
            self._writer.detach()
            with trio.CancelScope(shield=True):
                await self._stream.aclose()

    async def _finish(self) -> None:
        if self._state == "handshake":
            self._reject(500)
        elif self._state == "connected" and not self._peer_gone.is_set():
            self._close_frame(1011, "")
        with trio.move_on_after(CLOSE_WAIT):
            await self._writer.wait_flushed()
            if self._state == "closed" and not self._writer.broken:
                await self._peer_gone.wait()

    # --- the ASGI side ----------------------------------------------------------------
    async def receive(self) -> AsgiMessage:
        return await self._inbound.receive()

    async def send(self, message: AsgiMessage) -> None:
        kind = message["type"]
        if kind == "websocket.send":
            if self._state != "connected":
                return
            frame = message.get(FRAME_KEY)
            if frame is None:
                frame = self._data_frame(message)
            if not self._writer.push(frame):
                raise SlowConsumer("slow consumer: send buffer full")
        elif kind == "websocket.accept" and self._state == "handshake":
            self._accept(message)
        elif kind == "websocket.close":
            if self._state == "handshake":
                self._reject(403)
            elif self._state == "connected":
                self._close_frame(int(message.get("code", 1000)), message.get("reason") or "")
        else:
            raise RuntimeError(f"unexpected ASGI message {kind!r} in state {self._state}")

    def push_frame(self, frame: bytes) -> bool:
        """``websocket.send`` of an encoded frame, synchronously; False past the queue's bound."""
        if self._state != "connected":
            return True  # nothing goes out any more, as with ``send``
        return self._writer.push(frame)

    def _data_frame(self, message: AsgiMessage) -> bytes:
        data = message.get("bytes")
        if data is not None:
            return self._ws.send(BytesMessage(data=bytes(data)))
        return text_frame(str(message["text"]).encode())

    def _accept(self, message: AsgiMessage) -> None:
        headers = dict(self._request.headers)
        answer = [
            (b"upgrade", b"websocket"),
            (b"connection", b"Upgrade"),
            (b"sec-websocket-accept", generate_accept_token(headers[b"sec-websocket-key"])),
        ]
        chosen = message.get("subprotocol")
        if chosen is not None:
            if chosen not in self.scope["subprotocols"]:
                raise RuntimeError("accepted a subprotocol the client did not offer")
            answer.append((b"sec-websocket-protocol", chosen.encode()))
        answer += [(bytes(k), bytes(v)) for k, v in message.get("headers", ())]
        self._writer.push(_status(101, b"Switching Protocols", answer))
        self._state = "connected"
        assert self._nursery is not None
        self._nursery.start_soon(self._read)

    def _reject(self, status: int) -> None:
        reason = b"Forbidden" if status == 403 else b"Internal Server Error"
        headers = [(b"content-length", b"0"), (b"connection", b"close")]
        self._writer.push_last(_status(status, reason, headers))
        self._state = "closed"
        self._peer_gone.set()

    def _close_frame(self, code: int, reason: str) -> None:
        self._state = "closed"
        try:
            frame = self._ws.send(CloseConnection(code=code, reason=reason))
        except LocalProtocolError:
            return  # the peer closed first and was answered
        self._writer.push_last(frame)

    # --- the socket side ----------------------------------------------------------------
    async def _read(self) -> None:
        parts: list[str | bytes] = []
        size = 0
        too_big = False  # then read on only for the peer's close
        data: bytes | None = self._trailing
        while True:
            if data:
                self._ws.receive_data(data)
            for event in self._ws.events():
                if isinstance(event, Message) and not too_big:
                    parts.append(event.data)
                    size += len(event.data)
                    if size > self._limits.max_message_bytes:
                        too_big, parts = True, []
                        self._close_frame(1009, "Message too big")
                        await self._deliver({"type": "websocket.disconnect", "code": 1009})
                    elif event.message_finished:
                        await self._deliver(_joined(parts))
                        parts, size = [], 0
                elif isinstance(event, Ping):
                    self._writer.push(self._ws.send(event.response()))
                elif isinstance(event, CloseConnection):
                    await self._closed_by_peer(event, tell_app=not too_big)
                    return
            try:
                data = await self._stream.receive_some(MAX_RECV)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                data = b""
            if not data:
                self._ws.receive_data(None)

    async def _closed_by_peer(self, event: CloseConnection, *, tell_app: bool) -> None:
        if self._ws.state == ConnectionState.REMOTE_CLOSING:
            self._writer.push_last(self._ws.send(event.response()))
        elif self._ws.state == ConnectionState.OPEN:  # a protocol error of the peer's
            self._close_frame(event.code, event.reason or "")
        if self._state == "connected":
            self._state = "closed"
        self._peer_gone.set()
        if tell_app:
            await self._deliver({"type": "websocket.disconnect", "code": event.code})

    async def _deliver(self, message: AsgiMessage) -> None:
        # Broken or closed: the app has finished, nobody reads any more.
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            await self._inbound_send.send(message)


def _joined(parts: list[str | bytes]) -> AsgiMessage:
    if parts and isinstance(parts[0], str):
        return {"type": "websocket.receive", "text": "".join(str(p) for p in parts)}
    return {
        "type": "websocket.receive",
        "bytes": b"".join(p for p in parts if not isinstance(p, str)),
    }
