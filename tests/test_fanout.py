"""Shared subscription results: reused only where the viewer cannot matter."""

from __future__ import annotations

import httpx
import trio

from chatto.gql.fanout import SHARED
from tests.conftest import AuthEnv
from tests.liveclient import LiveClient, live_client
from tests.test_rooms_admin import ok, two_users

PLAIN = "subscription { myEvents { type roomId eventId userId message { id body } } }"
PERSONAL = """subscription { myEvents { type eventId reaction
  message { id body reactions { shortcode count mine } } } }"""


async def test_viewer_independent_results_are_shared_and_personal_ones_are_not(
    auth_env: AuthEnv,
) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, _b, tb = await two_users(auth_env, c)
            room = (await ok(c, ta, 'mutation { createRoom(name: "fan") { id } }'))["createRoom"]
            await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room["id"])
            async with (
                live_client(auth_env.url, ta, PLAIN) as a_plain,
                live_client(auth_env.url, tb, PLAIN) as b_plain,
                live_client(auth_env.url, ta, PERSONAL) as a_mine,
                live_client(auth_env.url, tb, PERSONAL) as b_mine,
            ):
                hits = SHARED.hits
                post = "mutation($r: ID!) { postMessage(roomId: $r, body: 'shared words') { id } }"
                post = post.replace("'", '"')
                eid = (await ok(c, ta, post, r=room["id"]))["postMessage"]["id"]
                posted = [
                    await cl.wait_for(lambda e: e["type"] == "MESSAGE_POSTED")
                    for cl in (a_plain, b_plain)
                ]
                assert all(p["message"]["body"] == "shared words" for p in posted)
                assert posted[0] == posted[1]
                # Two subscribers, one document, one event: the second reused the first.
                assert SHARED.hits > hits

                react = 'mutation($r: ID!, $e: ID!) { react(roomId: $r, eventId: $e, shortcode: "+1") { id } }'
                await ok(c, ta, react, r=room["id"], e=eid)
                mine = {}
                for name, cl in (("alice", a_mine), ("bob", b_mine)):
                    ev = await cl.wait_for(lambda e: e["type"] == "REACTION_CHANGED")
                    mine[name] = ev["message"]["reactions"]
                # Same event, same document, but `mine` depends on the viewer: never shared.
                # "+1" is stored under its canonical key (actors/rooms/reactions.py).
                assert mine["alice"] == [{"shortcode": "thumbsup", "count": 1, "mine": True}]
                assert mine["bob"] == [{"shortcode": "thumbsup", "count": 1, "mine": False}]


async def test_a_second_socket_does_not_rebroadcast_presence(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, b, tb = await two_users(auth_env, c)
            bob = b.user["id"]
            async with live_client(auth_env.url, ta) as watcher:
                async with live_client(auth_env.url, tb) as first:
                    await watcher.wait_for(lambda e: e["type"] == "PRESENCE" and e["userId"] == bob)
                    async with live_client(auth_env.url, tb) as second:
                        # Each socket still starts with the viewer's own status.
                        assert second.events[0] == first.events[0]
                        assert second.events[0]["presence"] == "ONLINE"
                        await ok(c, tb, "mutation { setPresence(status: AWAY) }")
                        await watcher.wait_for(
                            lambda e: e["type"] == "PRESENCE" and e["presence"] == "AWAY"
                        )
                bob_events = [
                    e["presence"] for e in watcher.of_type("PRESENCE") if e["userId"] == bob
                ]
                # One ONLINE (the first socket), then AWAY: the second socket changed nothing.
                assert bob_events == ["ONLINE", "AWAY"]


async def test_subscribers_who_arrive_together_still_share_one_execution(
    auth_env: AuthEnv,
) -> None:
    """Clients subscribing at the same moment with a text the server has not seen yet.

    The document is parsed in a worker thread; each of the requests that
    missed the cache together used to keep its own parse, so every event
    was executed (and its body opened) once per subscriber for the socket's
    whole life: a hot room's clients reconnecting together cost ~2x the CPU.
    """
    query = PLAIN.replace("userId", "userId  ")  # a text no earlier test sent
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _a, ta, _b, tb = await two_users(auth_env, c)
            room = await ok(c, ta, 'mutation { createRoom(name: "together") { id } }')
            rid = room["createRoom"]["id"]
            await ok(c, tb, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=rid)
            clients: list[LiveClient] = []
            ready = trio.Event()
            async with trio.open_nursery() as nursery:

                async def subscribe(token: str, *, task_status: trio.TaskStatus[None]) -> None:
                    async with live_client(auth_env.url, token, query) as cl:
                        clients.append(cl)
                        task_status.started()
                        await ready.wait()

                async with trio.open_nursery() as together:  # all at once, not one by one
                    for i in range(8):
                        together.start_soon(nursery.start, subscribe, ta if i % 2 else tb)
                misses = SHARED.misses
                post = 'mutation($r: ID!) { postMessage(roomId: $r, body: "together") { id } }'
                eid = (await ok(c, ta, post, r=rid))["postMessage"]["id"]
                for cl in clients:
                    await cl.wait_for(lambda e: e.get("eventId") == eid)
                # One execution for the eight subscribers, not eight.
                assert SHARED.misses - misses == 1
                ready.set()
