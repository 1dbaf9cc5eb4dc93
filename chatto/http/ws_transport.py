"""The ``graphql-transport-ws`` adapter (the graphql-ws library's protocol).

Client messages: ``connection_init``, ``ping``/``pong``, ``subscribe``,
``complete``. Server messages: ``connection_ack``, ``pong``, ``next``,
``error`` (a list of errors), ``complete``. A duplicate operation id closes
the socket (4409), as the protocol requires; everything else is the core's
(``chatto.http.ws_session``).
"""

from __future__ import annotations

import json
from typing import Any

from chatto.http.ws_session import WsSession

SUBPROTOCOL = "graphql-transport-ws"


class TransportWsFraming:
    def result_head(self, op_id: str) -> str:
        return '{"id":' + json.dumps(op_id) + ',"type":"next","payload":'

    def errors(self, op_id: str, errors: list[dict[str, Any]]) -> dict[str, Any]:
        return {"id": op_id, "type": "error", "payload": errors}

    def complete(self, op_id: str) -> dict[str, Any]:
        return {"id": op_id, "type": "complete"}


async def on_message(session: WsSession, msg: dict[str, Any]) -> None:
    """Handle one decoded client message."""
    kind = msg.get("type")
    if kind == "connection_init":
        refused = await session.init(msg.get("payload"))
        if refused is not None:
            await session.close(*refused)
            return
        await session.send_json({"type": "connection_ack"})
    elif kind == "ping":
        await session.send_json({"type": "pong"})
    elif kind == "pong":
        return
    elif kind == "subscribe":
        await session.start(msg.get("id"), msg.get("payload"))
    elif kind == "complete":
        session.stop(msg.get("id"))
    else:
        await session.close(4400, f"Unknown message type {str(kind)[:40]!r}")
