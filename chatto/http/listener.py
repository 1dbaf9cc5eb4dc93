"""Chatto's accept loop: GraphQL WebSockets to ``ws_server``, the rest to Hypercorn.

Each accepted connection's first request head is read (up to Hypercorn's
``h11_max_incomplete_size``); a valid WebSocket upgrade to ``/api/graphql``
is served by ``chatto.http.ws_server`` (coalesced frame writes), anything
else is handed to Hypercorn's own per-connection server with the bytes
already read replayed first, so HTTP, keep-alive and upgrades that follow
an HTTP request on the same connection behave exactly as with
``hypercorn.trio.serve``. ``TCPServer`` and ``WorkerContext`` are not
Hypercorn's public API: pyproject pins the minor version they were read
from. TLS listeners are not served here (``chatto.server`` keeps Hypercorn's
own loop for them). Shutdown mirrors Hypercorn's ``worker_serve``: stop
accepting, tell idle keep-alive connections to end, then give every
connection ``graceful_timeout`` before cancelling it; GraphQL sockets are
closed with 1001 by the app itself at once.
"""

from __future__ import annotations

import logging
from functools import partial
from typing import Any

import h11
import trio
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio.statsd import StatsdLogger
from hypercorn.trio.tcp_server import TCPServer
from hypercorn.trio.worker_context import WorkerContext
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr, repr_socket_addr

from chatto.http.ws_frames import Flusher, WriteStats
from chatto.http.ws_server import App, WsConnection, WsLimits, is_websocket_upgrade

log = logging.getLogger(__name__)

LEAN_PATH = b"/api/graphql"


class Replayed(trio.abc.HalfCloseableStream):
    """A socket stream whose first reads return bytes already read from it."""

    def __init__(self, stream: trio.SocketStream, prefix: bytes) -> None:
        self.stream = stream
        self.socket = stream.socket  # Hypercorn reads the addresses from it
        self._prefix = prefix

    async def receive_some(self, max_bytes: int | None = None) -> bytes:
        if self._prefix:
            n = len(self._prefix) if max_bytes is None else max_bytes
            out, self._prefix = self._prefix[:n], self._prefix[n:]
            await trio.lowlevel.checkpoint()
            return out
        return await self.stream.receive_some(max_bytes)

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await self.stream.send_all(data)

    async def wait_send_all_might_not_block(self) -> None:
        await self.stream.wait_send_all_might_not_block()

    async def send_eof(self) -> None:
        await self.stream.send_eof()

    async def aclose(self) -> None:
        await self.stream.aclose()


async def _read_head(stream: trio.SocketStream, limit: int, within: float) -> bytes:
    """Bytes up to the end of the first request head (or what came within the bounds)."""
    buf = b""
    with trio.move_on_after(within):
        while b"\r\n\r\n" not in buf and len(buf) < limit:
            chunk = await stream.receive_some(limit)
            if not chunk:
                break
            buf += chunk
    return buf


def _upgrade(head: bytes, limit: int) -> tuple[h11.Request, bytes] | None:
    """The request and the bytes after its head, if it is a GraphQL WebSocket upgrade."""
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=limit)
    conn.receive_data(head)
    try:
        event = conn.next_event()
    except h11.RemoteProtocolError:
        return None
    if not isinstance(event, h11.Request) or event.target.partition(b"?")[0] != LEAN_PATH:
        return None
    if not is_websocket_upgrade(event):
        return None
    return event, conn.trailing_data[0]


class Listener:
    """Serve one app on Hypercorn's configured plain sockets."""

    def __init__(self, app: App, hc: HypercornConfig, limits: WsLimits, stats: WriteStats) -> None:
        hc.set_statsd_logger_class(StatsdLogger)
        self._app = app
        self._wrapped = ASGIWrapper(app)  # type: ignore[arg-type]
        self._hc = hc
        self._limits = limits
        self._stats = stats
        self._context = WorkerContext(None)
        self._flusher = Flusher()
        self.lean = 0  # connections served by ws_server (tests, statistics)
        self.handed_over = 0

    async def serve(
        self,
        shutdown: trio.Event,
        *,
        task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    ) -> None:
        """Accept until ``shutdown``, then drain connections within the grace period."""
        hc = self._hc
        sockets = hc.create_sockets()
        listeners = []
        binds = []
        for sock in sockets.insecure_sockets:
            sock.listen(hc.backlog)
            listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))
            binds.append(f"http://{repr_socket_addr(sock.family, sock.getsockname())}")
        async with trio.open_nursery() as writing:
            await writing.start(self._flusher.serve)  # outlives every connection
            async with trio.open_nursery() as connections:
                try:
                    async with trio.open_nursery() as accepting:
                        accepting.start_soon(
                            partial(
                                trio.serve_listeners,
                                self._connection,
                                listeners,
                                handler_nursery=connections,
                            )
                        )
                        task_status.started(binds)
                        await shutdown.wait()
                        accepting.cancel_scope.cancel()
                finally:
                    for listener in listeners:
                        await listener.aclose()
                    await self._context.terminated.set()
                    grace = hc.graceful_timeout
                    connections.cancel_scope.deadline = trio.current_time() + grace
            writing.cancel_scope.cancel()

    async def _connection(self, stream: trio.SocketStream) -> None:
        hc = self._hc
        try:
            limit = hc.h11_max_incomplete_size
            head = await _read_head(stream, limit, hc.keep_alive_timeout)
            if not head:
                await stream.aclose()
                return
            upgrade = _upgrade(head, limit)
            if upgrade is None:
                self.handed_over += 1
                state = ConnectionState({})
                replayed = Replayed(stream, head)
                await TCPServer(self._wrapped, hc, self._context, state, replayed).run()  # type: ignore[arg-type]
                return
            self.lean += 1
            request, trailing = upgrade
            conn = WsConnection(
                stream,
                request,
                trailing,
                self._limits,
                self._stats,
                _addresses(stream),
                self._flusher,
            )
            await conn.serve(self._app)
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            await stream.aclose()
        except Exception:
            # One connection's failure must not end the server (Hypercorn logs them too).
            log.exception("error serving a connection")
            await stream.aclose()


def _addresses(stream: trio.SocketStream) -> tuple[Any, Any]:
    sock = stream.socket
    return (
        parse_socket_addr(sock.family, sock.getpeername()),
        parse_socket_addr(sock.family, sock.getsockname()),
    )
