"""A GraphQL WebSocket client for tests: collects ``myEvents`` in the background.

Speaks ``graphql-transport-ws`` (default) or the older ``graphql-ws``.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import attrs
import trio
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

MY_EVENTS = """subscription { myEvents { type roomId eventId seq userId reaction added typing
  presence message { id body retracted threadRootId inReplyTo reactions { shortcode count } } } }"""


@attrs.define
class LiveClient:
    ws: WebSocketConnection
    events: list[dict[str, Any]] = attrs.Factory(list)
    changed: trio.Event = attrs.Factory(trio.Event)
    closed_code: int | None = None

    async def wait_for(self, pred: Callable[[dict[str, Any]], bool]) -> dict[str, Any]:
        """The first event matching ``pred`` (the caller sets the deadline)."""
        while True:
            for ev in self.events:
                if pred(ev):
                    return ev
            self.changed = trio.Event()
            await self.changed.wait()

    def of_type(self, kind: str, room_id: str | None = None) -> list[dict[str, Any]]:
        return [
            e
            for e in self.events
            if e["type"] == kind and (room_id is None or e["roomId"] == room_id)
        ]

    async def _pump(self) -> None:
        try:
            while True:
                msg = json.loads(await self.ws.get_message())
                if msg.get("type") in ("next", "data"):
                    self.events.append(msg["payload"]["data"]["myEvents"])
                    self.changed.set()
        except ConnectionClosed as exc:
            self.closed_code = exc.reason.code
            self.changed.set()


@asynccontextmanager
async def live_client(
    base_url: str,
    token: str,
    query: str = MY_EVENTS,
    cookie: str = "",
    protocol: str = "graphql-transport-ws",
) -> AsyncIterator[LiveClient]:
    """``myEvents`` with a bearer token, or (``token=""``) the session cookie."""
    url = base_url.replace("http://", "ws://") + "/api/graphql"
    headers = [(b"cookie", f"chatto_session={cookie}".encode())] if cookie else None
    async with open_websocket_url(url, subprotocols=[protocol], extra_headers=headers) as ws:
        payload = {"authorization": f"Bearer {token}"} if token else {}
        init = {"type": "connection_init", "payload": payload}
        await ws.send_message(json.dumps(init))
        ack = json.loads(await ws.get_message())
        assert ack["type"] == "connection_ack", ack
        start = "subscribe" if protocol == "graphql-transport-ws" else "start"
        sub = {"id": "live", "type": start, "payload": {"query": query}}
        await ws.send_message(json.dumps(sub))
        client = LiveClient(ws)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client._pump)
            await client.wait_for(lambda e: e["type"] == "PRESENCE")  # subscribed
            yield client
            nursery.cancel_scope.cancel()
