"""A WebSocket client on a socket the test shapes itself (receive buffer, reads).

trio-websocket reads as fast as it can; the coalescing and slow-consumer
tests need a client whose kernel receive buffer is small and that reads only
when told, and the keep-alive test one that upgrades a connection that has
already carried an HTTP request. wsproto does the framing.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import trio
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    CloseConnection,
    Event,
    RejectConnection,
    Request,
    TextMessage,
)


async def open_socket(port: int, rcvbuf: int | None = None) -> trio.SocketStream:
    sock = trio.socket.socket()
    if rcvbuf is not None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    await sock.connect(("127.0.0.1", port))
    return trio.SocketStream(sock)


class RawWs:
    """graphql-transport-ws over ``stream``: ``upgrade`` first, then messages."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.close: CloseConnection | None = None
        self._texts: list[str] = []
        self._partial: list[str] = []
        self._events: list[Event] = []

    async def upgrade(self, headers: list[tuple[bytes, bytes]] | None = None) -> Event:
        """Send the opening handshake; the server's answer (accept or reject)."""
        request = Request(
            host="127.0.0.1",
            target="/api/graphql",
            subprotocols=["graphql-transport-ws"],
            extra_headers=headers or [],
        )
        await self.stream.send_all(self.ws.send(request))
        while True:
            for event in self._pending_events():
                if isinstance(event, AcceptConnection | RejectConnection):
                    return event
            await self._read()

    async def send(self, **msg: Any) -> None:
        await self.stream.send_all(self.ws.send(TextMessage(data=json.dumps(msg))))

    async def recv(self) -> dict[str, Any]:
        """The next message; raises EOFError once the server has closed."""
        while not self._texts:
            for event in self._pending_events():
                if isinstance(event, TextMessage):
                    self._partial.append(event.data)
                    if event.message_finished:
                        self._texts.append("".join(self._partial))
                        self._partial = []
                elif isinstance(event, CloseConnection):
                    self.close = event
            if self._texts:
                break
            if self.close is not None:
                raise EOFError(self.close.code)
            await self._read()
        msg: dict[str, Any] = json.loads(self._texts.pop(0))
        return msg

    def _pending_events(self) -> list[Event]:
        events, self._events = self._events + list(self.ws.events()), []
        return events

    async def _read(self) -> None:
        try:
            data = await self.stream.receive_some(1 << 16)
        except trio.BrokenResourceError:
            data = b""
        if not data:
            raise EOFError(self.close.code if self.close else 1006)
        self.ws.receive_data(data)
