"""The live fast lane: what it writes is what the reader would have written, in order."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

import actors.hub
from actors.hub import Hub
from chatto.gql.fanout import sync_capable
from chatto.gql.schema import build_schema
from tests.conftest import AuthEnv
from tests.liveclient import MY_EVENTS, live_client
from tests.test_rooms_admin import ok, two_users

WATCH = MY_EVENTS.replace("presence ", "presence notification { id kind } ")


def _normal(events: list[dict[str, Any]]) -> list[Any]:
    """The events with ids and sequences replaced by their order of appearance."""
    names: dict[Any, str] = {}

    def norm(value: Any, key: str = "") -> Any:
        if isinstance(value, dict):
            return {k: norm(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [norm(v) for v in value]
        if key in ("id", "roomId", "eventId", "seq", "threadRootId", "inReplyTo") and value:
            return names.setdefault((key == "seq", value), f"#{len(names)}")
        return value

    return [norm(e) for e in events if e["type"] != "PRESENCE"]


async def _scenario(env: AuthEnv, c: httpx.AsyncClient, ta: str, tb: str, name: str) -> list[Any]:
    """Bob watches while Alice posts, mentions him, edits, reacts, pins, retracts."""
    rid = (await ok(c, ta, "mutation($n: String!) { createRoom(name: $n) { id } }", n=name))[
        "createRoom"
    ]["id"]
    await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=rid)
    post = "mutation($r: ID!, $b: String!) { postMessage(roomId: $r, body: $b) { id } }"
    async with live_client(env.url, tb, WATCH) as bob:
        first = (await ok(c, ta, post, r=rid, b="one"))["postMessage"]["id"]
        await ok(c, ta, post, r=rid, b="hello @member")
        edit = (
            "mutation($r: ID!, $e: ID!) { editMessage(roomId: $r, eventId: $e, body: $b) { id } }"
        )
        await ok(c, ta, edit.replace("$b", '"one, edited"'), r=rid, e=first)
        react = (
            'mutation($r: ID!, $e: ID!) { react(roomId: $r, eventId: $e, shortcode: "+1") { id } }'
        )
        await ok(c, ta, react, r=rid, e=first)
        await ok(
            c,
            ta,
            "mutation($r: ID!, $e: ID!) { pinMessage(roomId: $r, eventId: $e) }",
            r=rid,
            e=first,
        )
        await ok(
            c,
            ta,
            "mutation($r: ID!, $e: ID!) { unpinMessage(roomId: $r, eventId: $e) }",
            r=rid,
            e=first,
        )
        await ok(
            c,
            ta,
            "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }",
            r=rid,
            e=first,
        )
        last = (await ok(c, ta, post, r=rid, b="last"))["postMessage"]["id"]
        await bob.wait_for(lambda e: e["type"] == "MESSAGE_POSTED" and e["eventId"] == last)
        return _normal([e for e in bob.events if e.get("roomId") in (rid, None)])


async def test_the_fast_lane_writes_what_the_reader_would(
    auth_env: AuthEnv, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub: Hub = auth_env.server.running.services.hub
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, _b, tb = await two_users(auth_env, c)
            before = hub.fast_delivered
            fast = await _scenario(auth_env, c, ta, tb, "fast")
            used = hub.fast_delivered - before
            monkeypatch.setattr(actors.hub, "FAST_PER_BATCH", 0)  # every item to the reader
            before = hub.fast_delivered
            slow = await _scenario(auth_env, c, ta, tb, "slow")
            assert hub.fast_delivered == before
    # Posts, the edit, the reaction, pins and the retraction went by the lane
    # (the mention did not: a NOTIFICATION follows it, which only the reader yields).
    assert used >= 6
    kinds = [e["type"] for e in fast]
    assert kinds[kinds.index("MESSAGE_POSTED", 1) + 1] == "NOTIFICATION"
    assert fast == slow


class _Lane:
    def __init__(self, accept: set[str]) -> None:
        self.accept = accept
        self.written: list[str] = []

    def __call__(self, item: str) -> bool:
        if item not in self.accept:
            return False
        self.written.append(item)
        return True


async def test_once_an_item_is_queued_later_ones_queue_behind_it() -> None:
    hub = Hub()
    with hub.subscribe(["t"]) as sub:
        lane = _Lane({"b", "c"})
        sub.fast, sub.parked = lane, True
        hub.publish("t", "b")  # parked: written by the lane
        hub.publish("t", "a")  # declined: queued, so the reader is busy now
        hub.publish("t", "c")  # the lane would take it, but it must follow "a"
        assert lane.written == ["b"]
        assert [sub.receive.receive_nowait(), sub.receive.receive_nowait()] == ["a", "c"]
        assert hub.fast_delivered == 1 and hub.delivered == 3


async def test_fast_deliveries_stop_at_the_budget_until_refilled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(actors.hub, "FAST_PER_BATCH", 2)
    hub = Hub()
    with hub.subscribe(["t"]) as a, hub.subscribe(["t"]) as b, hub.subscribe(["t"]) as c:
        lanes = [_Lane({"x", "y"}) for _ in range(3)]
        for sub, lane in zip((a, b, c), lanes, strict=True):
            sub.fast, sub.parked = lane, True
        hub.publish("t", "x")  # two by their lanes, the third queued
        hub.publish("t", "y")  # the budget is spent: all queued
        queued = [s.receive.statistics().current_buffer_used for s in (a, b, c)]
        assert sum(len(lane.written) for lane in lanes) == 2 and sum(queued) == 4
        for sub in (a, b, c):  # the readers catch up and park again
            while True:
                try:
                    sub.receive.receive_nowait()
                except trio.WouldBlock:
                    break
            sub.parked = True
        hub.refill_fast()  # the next batch
        hub.publish("t", "x")
        assert sum(len(lane.written) for lane in lanes) == 4
        assert hub.fast_delivered == 4


async def test_a_failing_lane_is_switched_off_and_the_item_queued() -> None:
    hub = Hub()
    with hub.subscribe(["t"]) as sub:

        def broken(_item: object) -> bool:
            raise RuntimeError("bug")

        sub.fast, sub.parked = broken, True
        hub.publish("t", "x")
        assert sub.fast is None
        assert sub.receive.receive_nowait() == "x"


def test_only_documents_without_waiting_resolvers_are_rendered_in_the_publisher() -> None:
    from graphql import parse

    schema = build_schema()
    assert sync_capable(schema, parse(MY_EVENTS))
    # Attachment names are opened with a key fetched by a coroutine.
    attach = "subscription { myEvents { message { attachments { name } } } }"
    assert not sync_capable(schema, parse(attach))
