"""Client side of the multi-process tests: post, page history, follow live.

A process that dies takes its WebSockets with it and the server keeps no
per-client replay buffer, so a client *resumes* by reconnecting (to any
process) and paging the room's history for what it missed. ``Follower``
does exactly that and keeps one ordered, de-duplicated list of the room's
messages as the client saw them. ``Poster`` posts unique bodies and counts
acknowledged, failed and retried posts, so a fault run can check that every
acknowledged post is stored exactly once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import attrs
import httpx
import trio
from trio_websocket import ConnectionClosed, HandshakeError

from tests.authflow import bearer, login_token, register
from tests.liveclient import live_client
from tests.smtp_sink import SmtpSink

PW = "a long enough password"
POST = """mutation($r: ID!, $b: String!, $k: String) {
  postMessage(roomId: $r, body: $b, clientMessageId: $k) { id } }"""
HISTORY = """query($r: ID!, $b: String, $l: Int) { room(id: $r) { events(before: $b, limit: $l)
  { events { id body author { login } } hasOlder startCursor } } }"""
# What a client sees when a process or a NATS node goes away mid-request.
TRANSPORT_ERRORS = (httpx.TransportError, OSError)


class GraphQLError(Exception):
    """The server answered with GraphQL errors (the first one's code is kept)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


async def gql(c: httpx.AsyncClient, token: str, query: str, **variables: Any) -> dict[str, Any]:
    """Run a document; the data, or ``GraphQLError``."""
    r = await c.post(
        "/api/graphql", json={"query": query, "variables": variables}, headers=bearer(token)
    )
    try:
        body = r.json()
    except ValueError:
        raise GraphQLError(f"HTTP_{r.status_code}", r.text[:200]) from None
    if body.get("errors"):
        err = body["errors"][0]
        raise GraphQLError(err.get("extensions", {}).get("code", "?"), err.get("message", ""))
    return body["data"]  # type: ignore[no-any-return]


async def user(c: httpx.AsyncClient, sink: SmtpSink, name: str) -> tuple[str, str]:
    """Register ``name`` through whichever process ``c`` talks to; (user id, token)."""
    acct = await register(c, sink, f"{name}@example.com", name, PW)
    return acct.user["id"], await login_token(c, name, PW)


async def history(c: httpx.AsyncClient, token: str, room: str) -> list[dict[str, Any]]:
    """The whole room history, oldest first, paged 500 at a time."""
    out: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10_000):
        page = (await gql(c, token, HISTORY, r=room, b=cursor, l=500))["room"]["events"]
        out = page["events"] + out
        if not page["hasOlder"]:
            return out
        cursor = page["startCursor"]
    raise AssertionError("history did not end")


@attrs.define
class Poster:
    """Posts ``prefix-N`` bodies through a list of processes, retrying on errors.

    A failed attempt's outcome is unknown (the server may have stored it
    before the failure), so the retry posts a *new* body (``prefix-N.r1``):
    a body stored twice is then always a server-side duplicate. With
    ``idempotent`` every attempt of message N sends the same body and the
    same ``clientMessageId``: the server must then store each N exactly once.
    """

    prefix: str
    token: str
    room: str
    urls: Sequence[str]
    acked: dict[str, str] = attrs.Factory(dict)  # body -> message id
    attempted: list[str] = attrs.Factory(list)
    errors: dict[str, int] = attrs.Factory(dict)  # error kind -> count
    messages: dict[str, str] = attrs.Factory(dict)  # error kind -> its last message
    target: int = 0  # index into urls of the process used now
    idempotent: bool = False

    async def post_one(self, n: int, max_attempts: int = 200) -> str | None:
        """Post message ``n``, retrying (bounded); its acknowledged body or None."""
        for attempt in range(max_attempts):
            body = f"{self.prefix}-{n}"
            if attempt and not self.idempotent:
                body += f".r{attempt}"
            self.attempted.append(body)
            key = body if self.idempotent else None
            url = self.urls[self.target % len(self.urls)]
            try:
                async with httpx.AsyncClient(base_url=url, timeout=10) as c:
                    data = await gql(c, self.token, POST, r=self.room, b=body, k=key)
                self.acked[body] = data["postMessage"]["id"]
                return body
            except GraphQLError as exc:
                kind = exc.code
                self.messages[kind] = str(exc)
            except TRANSPORT_ERRORS as exc:
                kind = type(exc).__name__
                self.messages[kind] = str(exc)
                self.target += 1  # that process is gone: try the next one
            self.errors[kind] = self.errors.get(kind, 0) + 1
            await trio.sleep(0.2)
        return None

    @property
    def failed_attempts(self) -> int:
        return sum(self.errors.values())


@attrs.define
class Follower:
    """A ``myEvents`` client that reconnects to any process and resumes by paging."""

    token: str
    room: str
    urls: Sequence[str]
    messages: list[tuple[str, str]] = attrs.Factory(list)  # (id, body) as the client saw them
    reconnects: int = 0
    live_count: int = 0
    connected: trio.Event = attrs.Factory(trio.Event)
    _ids: set[str] = attrs.Factory(set)

    def bodies(self) -> list[str]:
        return [b for _, b in self.messages]

    def _add(self, msg_id: str, body: str) -> None:
        if msg_id not in self._ids:
            self._ids.add(msg_id)
            self.messages.append((msg_id, body))

    async def _catch_up(self, url: str) -> None:
        async with httpx.AsyncClient(base_url=url, timeout=10) as c:
            for m in await history(c, self.token, self.room):
                self._add(m["id"], m["body"])

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Follow forever (the caller cancels); ``started`` once first subscribed."""
        started = False
        attempt = 0
        while True:
            url = self.urls[attempt % len(self.urls)]
            attempt += 1
            try:
                async with live_client(url, self.token) as live:
                    # Subscribed first, then page: nothing falls in between.
                    await self._catch_up(url)
                    if not started:
                        started = True
                        task_status.started()
                    self.connected.set()
                    seen = 0
                    while live.closed_code is None:
                        for ev in live.events[seen:]:
                            if ev["type"] == "MESSAGE_POSTED" and ev["roomId"] == self.room:
                                self.live_count += 1
                                self._add(ev["message"]["id"], ev["message"]["body"])
                        seen = len(live.events)
                        live.changed = trio.Event()
                        if live.closed_code is None:
                            await live.changed.wait()
            except* (*TRANSPORT_ERRORS, ConnectionClosed, HandshakeError, GraphQLError):
                pass
            self.connected = trio.Event()
            self.reconnects += 1
            await trio.sleep(0.3)


def check_history(
    stored: list[dict[str, Any]], posters: Sequence[Poster]
) -> dict[str, int | list[str]]:
    """Compare the stored history with what the posters know; figures for a report."""
    bodies = [m["body"] for m in stored]
    counts: dict[str, int] = {}
    for b in bodies:
        counts[b] = counts.get(b, 0) + 1
    acked = {b for p in posters for b in p.acked}
    attempted = {b for p in posters for b in p.attempted}
    ambiguous = attempted - acked
    return {
        "acked": len(acked),
        "acked_missing": sorted(acked - set(bodies)),
        "duplicates": sorted(b for b, n in counts.items() if n > 1),
        "unattempted_present": sorted(set(bodies) - attempted),
        "failed_attempts": sum(p.failed_attempts for p in posters),
        "failed_but_stored": len(ambiguous & set(bodies)),
        "stored": len(bodies),
    }


def per_author_order_kept(stored: list[dict[str, Any]], poster: Poster) -> bool:
    """The poster's acknowledged messages appear in the order it posted them."""
    order = [b for b in poster.attempted if b in poster.acked]
    return [m["body"] for m in stored if m["body"] in poster.acked] == order


def dumps(figures: dict[str, Any]) -> str:
    return json.dumps(figures, indent=2, sort_keys=True)
