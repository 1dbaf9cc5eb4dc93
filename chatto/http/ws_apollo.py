"""The ``graphql-ws`` adapter (Apollo's subscriptions-transport-ws protocol).

Older clients and tools still speak it (the Python ``gql`` client picks it
by default). Client messages: ``connection_init``, ``start``, ``stop``,
``connection_terminate``. Server messages: ``connection_ack``, ``ka``
(keep-alive, right after the ack and every ``KEEPALIVE_SECONDS``),
``connection_error`` (before a refused init is closed), ``data``, ``error``
(one error object, for an operation refused before execution: the
protocol's shape, so only the first error is sent) and ``complete`` (also
after a ``stop``). A ``start`` with an id in use replaces that operation,
as the reference server does. Authentication, limits, close codes and
shutdown are the core's (``chatto.http.ws_session``), identical to
``graphql-transport-ws``.
"""

from __future__ import annotations

import json
from typing import Any

import trio

from chatto.http.ws_session import WsSession

SUBPROTOCOL = "graphql-ws"
KEEPALIVE_SECONDS = 20.0
KEEPALIVE = json.dumps({"type": "ka"})


class ApolloFraming:
    def result_head(self, op_id: str) -> str:
        return '{"id":' + json.dumps(op_id) + ',"type":"data","payload":'

    def errors(self, op_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": op_id, "type": "error", "payload": errors[0]}

    def complete(self, op_id: str) -> dict[str, Any]:
        return {"id": op_id, "type": "complete"}


async def keep_alive(session: WsSession) -> None:
    """``ka`` messages: the protocol's only liveness signal (clients may time out without)."""
    while True:
        await session.send_text(KEEPALIVE)
        await trio.sleep(KEEPALIVE_SECONDS)


async def on_message(session: WsSession, msg: dict[str, Any]) -> None:
    """Handle one decoded client message."""
    kind = msg.get("type")
    if kind == "connection_init":
        refused = await session.init(msg.get("payload"))
        if refused is not None:
            error = {"type": "connection_error", "payload": {"message": refused[1]}}
            await session.send_json(error)
            await session.close(*refused)
            return
        await session.send_json({"type": "connection_ack"})
        session.start_soon(keep_alive, session)
    elif kind == "start":
        await session.start(msg.get("id"), msg.get("payload"), replace=True)
    elif kind == "stop":
        op_id = msg.get("id")
        if session.stop(op_id):
            await session.send_json({"id": str(op_id), "type": "complete"})
    elif kind == "connection_terminate":
        await session.close(1000, "Connection terminated")
    else:
        await session.close(4400, f"Unknown message type {str(kind)[:40]!r}")
