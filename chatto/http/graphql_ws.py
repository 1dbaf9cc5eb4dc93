"""GraphQL over WebSocket on ``/api/graphql``: negotiation and the read loop.

Ariadne's own WebSocket handlers spawn asyncio tasks, so Chatto speaks the
protocols itself, both on one path: ``graphql-transport-ws``
(``ws_transport.py``) and the older ``graphql-ws`` of Apollo's
subscriptions-transport-ws (``ws_apollo.py``), two thin adapters over one
operation core (``ws_session.py``: authentication, limits, credential ends,
shutdown). The subprotocol is the first one in the client's
``Sec-WebSocket-Protocol`` list that Chatto speaks: RFC 6455 orders that list
by the client's preference. (It also keeps the ``gql`` client working: it
offers ``graphql-ws`` first and, reading the response header
case-sensitively, assumes ``graphql-ws`` from Hypercorn's lower-case header.)
A client that offers neither is accepted only to be closed with 4406 and a
reason naming both, which a refused handshake (HTTP 403, no body) cannot say.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import attrs
import trio
from graphql import GraphQLSchema

from chatto.errors import ChattoError
from chatto.http import ws_apollo, ws_transport
from chatto.http.asgi import Message, Receive, Scope, Send, header
from chatto.http.ws_server import COALESCED
from chatto.http.ws_session import MAX_MESSAGE_BYTES, Framing, WsSession
from chatto.services import Services

UNSUPPORTED = "Subprotocol not acceptable: offer graphql-transport-ws or graphql-ws"


@attrs.frozen
class Adapter:
    framing: Framing
    on_message: Callable[[WsSession, dict[str, Any]], Awaitable[None]]


ADAPTERS: dict[str, Adapter] = {
    ws_transport.SUBPROTOCOL: Adapter(ws_transport.TransportWsFraming(), ws_transport.on_message),
    ws_apollo.SUBPROTOCOL: Adapter(ws_apollo.ApolloFraming(), ws_apollo.on_message),
}


def negotiate(offered: Sequence[str]) -> str | None:
    """The first subprotocol the client offers that Chatto speaks."""
    return next((name for name in offered if name in ADAPTERS), None)


def _text(message: Message) -> str | None:
    """The message's text, or None when it is over ``MAX_MESSAGE_BYTES``."""
    text = message.get("text")
    if text is None:
        data = message.get("bytes") or b""
        if len(data) > MAX_MESSAGE_BYTES:
            return None
        text = data.decode("utf-8", errors="replace")
    return text if len(text) <= MAX_MESSAGE_BYTES else None


def _decode(text: str) -> dict[str, Any] | None:
    try:
        msg = json.loads(text)
    except ValueError:
        return None
    return msg if isinstance(msg, dict) and "type" in msg else None


async def handle_graphql_ws(
    scope: Scope,
    receive: Receive,
    send: Send,
    services: Services,
    schema: GraphQLSchema,
    shutdown: trio.Event,
) -> None:
    """Serve one WebSocket connection until either side closes it or the server stops."""
    first = await receive()
    if first["type"] != "websocket.connect":
        return
    chosen = negotiate(scope.get("subprotocols", ()))
    if chosen is None:
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.close", "code": 4406, "reason": UNSUPPORTED})
        return
    await send({"type": "websocket.accept", "subprotocol": chosen})
    open_sockets = services.metrics.websockets.labels(chosen)
    open_sockets.inc()
    try:
        await _serve(scope, receive, send, services, schema, shutdown, chosen)
    finally:
        open_sockets.dec()


async def _serve(
    scope: Scope,
    receive: Receive,
    send: Send,
    services: Services,
    schema: GraphQLSchema,
    shutdown: trio.Event,
    protocol: str,
) -> None:
    adapter = ADAPTERS[protocol]
    async with trio.open_nursery() as nursery:
        session = WsSession(
            send,
            services,
            schema,
            nursery,
            adapter.framing,
            protocol,
            header(scope, b"cookie"),
            coalesced=COALESCED in scope.get("extensions", {}),
            push=scope.get("extensions", {}).get(COALESCED, {}).get("push"),
        )
        nursery.start_soon(session.expire_init)
        nursery.start_soon(session.close_on, shutdown)
        try:
            while True:
                message = await receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = _text(message)
                if text is None:
                    await session.close(1009, "Message too big")
                    break
                msg = _decode(text)
                if msg is None:
                    await session.close(4400, "Invalid message")
                    break
                await adapter.on_message(session, msg)
        except ChattoError as exc:
            await session.close(1011, exc.code)
        session.closed = True
        nursery.cancel_scope.cancel()
