"""One virtual user's live connection: ``myEvents`` over graphql-transport-ws.

A churning client drops its socket now and then and reconnects; after
each reconnect it resumes as a real client would: it subscribes first,
then pages its room's history backwards until it meets a message it had
already seen, so a message posted while it was away still reaches it
(counted as resumed, not as a live delivery).
"""

from __future__ import annotations

import json
import random
from collections import Counter
from collections.abc import Mapping
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, open_websocket_url

from chatto.loadtest.accounts import SetupError, VUser, gql

# What a chat client needs to show a message without fetching it again.
MY_EVENTS_FULL = (
    "subscription { myEvents { type roomId eventId message { id body author { id } } } }"
)
MY_EVENTS_BARE = "subscription { myEvents { type roomId eventId } }"
SHAPES = {"full": MY_EVENTS_FULL, "bare": MY_EVENTS_BARE}
CONNECT_SECONDS = 15.0
SOCKET_ANSWER_SECONDS = 30.0
MAX_CONNECTS = 1000
RESUME_PAGE = 100
RESUME_PAGES = 50
PAGE = """query($r: ID!, $b: String, $n: Int) { room(id: $r) {
  events(before: $b, limit: $n) { events { id } hasOlder startCursor } } }"""


@attrs.define
class ChurnWindow:
    """Churners drop their sockets until ``end`` (set when the offered load starts)."""

    end: float = float("inf")


@attrs.define(eq=False)
class SocketRequest:
    """A mutation sent on the client's live socket, waiting for its answer."""

    done: trio.Event = attrs.Factory(trio.Event)
    doc: Any = None  # the ``next`` payload; None if the socket went first


@attrs.define
class ClientState:
    user: VUser
    live: dict[str, float] = attrs.Factory(dict)  # event id -> receive time
    resumed: set[str] = attrs.Factory(set)
    connects: int = 0
    connected: bool = False
    errors: Counter[str] = attrs.Factory(Counter)
    shape: str = "full"
    # The open socket, when posts go over it (``--post-via ws``, as the web
    # client does), and the requests it has not answered yet.
    ws: WebSocketConnection | None = None
    requests: dict[str, SocketRequest] = attrs.Factory(dict)

    def drop_requests(self) -> None:
        """The socket is gone: its unanswered requests get no answer (the caller retries)."""
        for req in self.requests.values():
            req.done.set()
        self.requests.clear()

    def has(self, event_id: str) -> bool:
        return event_id in self.live or event_id in self.resumed

    @property
    def seen(self) -> int:
        return len(self.live) + len(self.resumed)


def _on_frame(state: ClientState, text: str, now: float) -> str | None:
    """Record a posted message; answer a ping; raise on a protocol error."""
    msg = json.loads(text)
    kind = msg.get("type")
    if msg.get("id", "1") != "1":
        _answer(state, msg)
    elif kind == "next":
        ev = msg["payload"]["data"]["myEvents"]
        if ev["type"] == "MESSAGE_POSTED" and ev["eventId"] not in state.resumed:
            if state.shape == "full" and not _complete(ev):
                # Counted, not delivered: a client could not show this message.
                state.errors["live: message without body or author"] += 1
                return None
            state.live.setdefault(ev["eventId"], now)
    elif kind == "ping":
        return '{"type":"pong"}'
    elif kind in ("error", "complete"):
        raise SetupError(f"subscription ended: {text[:200]}")
    return None


def _answer(state: ClientState, msg: dict[str, Any]) -> None:
    req = state.requests.get(msg["id"])
    if req is None:
        return
    if msg.get("type") == "next":
        req.doc = msg.get("payload")
    elif msg.get("type") == "error":
        req.doc = {"errors": msg.get("payload")}
    if msg.get("type") in ("complete", "error"):
        del state.requests[msg["id"]]
        req.done.set()


async def request_on_socket(state: ClientState, op_id: str, payload: dict[str, Any]) -> Any:
    """Send a mutation on the live socket; its response document, or None if not sent or lost."""
    ws = state.ws
    if ws is None or not state.connected:
        return None
    req = state.requests[op_id] = SocketRequest()
    try:
        await ws.send_message(json.dumps({"id": op_id, "type": "subscribe", "payload": payload}))
    except ConnectionClosed:
        state.requests.pop(op_id, None)
        return None
    # Bounded like an HTTP post: no answer in time is a lost answer (the
    # caller sends the post again over HTTP; its clientMessageId dedups it).
    with trio.move_on_after(SOCKET_ANSWER_SECONDS):
        await req.done.wait()
    state.requests.pop(op_id, None)
    return req.doc


def _complete(ev: dict[str, Any]) -> bool:
    msg = ev.get("message") or {}
    return isinstance(msg.get("body"), str) and bool((msg.get("author") or {}).get("id"))


async def _resume(http: httpx.AsyncClient, state: ClientState, known: set[str]) -> None:
    """Page back through the room until a message this client had before it reconnected.

    Messages that arrived live on the new socket do not count as the meeting
    point: in a busy room the newest page is full of them, and stopping there
    skipped everything older that was missed while away.
    """
    before: str | None = None
    for _ in range(RESUME_PAGES):
        vars_ = {"r": state.user.room_id, "b": before, "n": RESUME_PAGE}
        page = (await gql(http, state.user.token, PAGE, vars_))["room"]["events"]
        ids = [e["id"] for e in page["events"]]
        overlap = any(i in known for i in ids)
        state.resumed.update(i for i in ids if i not in state.live)
        if overlap or not page["hasOlder"]:
            return
        before = page["startCursor"]
    state.errors["resume: gave up after max pages"] += 1


async def _session(
    ws_url: str,
    http: httpx.AsyncClient,
    state: ClientState,
    until: float | None,
    on_up: trio.Event | None,
) -> None:
    """One socket from connect to ``until`` (None: until cancelled)."""
    # What this client had before this socket: where a resume may stop.
    known = set(state.live) | state.resumed if state.connects else set()
    async with open_websocket_url(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
        with trio.fail_after(CONNECT_SECONDS):
            init = {"authorization": f"Bearer {state.user.token}"}
            await ws.send_message(json.dumps({"type": "connection_init", "payload": init}))
            ack = json.loads(await ws.get_message())
            if ack.get("type") != "connection_ack":
                raise SetupError(f"no connection_ack: {str(ack)[:200]}")
            sub = {"id": "1", "type": "subscribe", "payload": {"query": SHAPES[state.shape]}}
            await ws.send_message(json.dumps(sub))
            first = await ws.get_message()  # the viewer's own PRESENCE: subscribed
            _on_frame(state, str(first), trio.current_time())
        state.connects += 1
        state.connected = True
        state.ws = ws
        try:
            async with trio.open_nursery() as nursery:
                if state.connects > 1:
                    nursery.start_soon(_resume, http, state, known)
                if on_up is not None:
                    on_up.set()
                with trio.move_on_at(until if until is not None else float("inf")):
                    while True:
                        reply = _on_frame(state, str(await ws.get_message()), trio.current_time())
                        if reply is not None:
                            await ws.send_message(reply)
        finally:
            state.connected = False
            state.ws = None
            state.drop_requests()


async def run_client(
    ws_url: str,
    http: httpx.AsyncClient,
    state: ClientState,
    window: ChurnWindow,
    churn_seconds: float | None,
    rng: random.Random,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Keep one socket up until cancelled; churners drop it until ``window.end``.

    Reported as started once the first subscription is live. A failed
    connect is counted and retried after a pause (bounded in count).
    """
    started = False
    for _ in range(MAX_CONNECTS):
        now = trio.current_time()
        until = None
        if churn_seconds is not None and now < window.end:
            until = min(window.end, now + rng.uniform(0.5, 1.5) * churn_seconds)
        up = trio.Event()
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(_session, ws_url, http, state, until, up)
                await up.wait()
                if not started:
                    started = True
                    task_status.started()
        except* (ConnectionClosed, HandshakeError, OSError, SetupError, trio.TooSlowError) as grp:
            for exc in grp.exceptions:
                state.errors[f"ws: {type(exc).__name__}"] += 1
        except* (httpx.HTTPError, KeyError, TypeError) as resume_grp:
            for err in resume_grp.exceptions:
                state.errors[f"resume: {type(err).__name__}"] += 1
        # Away for a moment: a churned-out socket, or a pause before retrying.
        await trio.sleep(rng.uniform(0.2, 1.0) if until is not None else 0.5)
    state.errors["ws: gave up reconnecting"] += 1


def receipt_summary(states: Mapping[int, ClientState]) -> dict[str, Any]:
    errors: Counter[str] = Counter()
    for s in states.values():
        errors.update(s.errors)
    return {
        "connects": sum(s.connects for s in states.values()),
        "reconnects": sum(max(0, s.connects - 1) for s in states.values()),
        "errors": dict(errors),
    }
