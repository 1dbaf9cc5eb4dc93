"""Notifications across two Chatto OS processes on one 3-node NATS cluster.

Same harness as ``tests/test_cluster.py`` (real processes, real clustered
``nats-server`` nodes, HTTP and WebSocket clients).
"""

from __future__ import annotations

import httpx
import trio

from tests.clusterclient import gql, user
from tests.liveclient import live_client
from tests.test_cluster import Pair, nats_cluster, pair  # noqa: F401 (fixtures)
from tests.test_notifications import LIVE

ROOM_COUNTS = "query($r: ID!) { room(id: $r) { mentionCount } }"
NOTES = "{ notifications { items { id kind } } }"


async def test_mention_on_one_process_notifies_clients_on_both(pair: Pair) -> None:  # noqa: F811
    """A mention posted through A reaches Bob's clients on A and B; his dismissal
    through B reaches both; both processes' feeds and counts agree."""
    a, b = pair.a, pair.b
    with trio.fail_after(120):
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=20) as cb,
        ):
            _alice, ta = await user(ca, pair.sink, "alice")
            _bob, tb = await user(cb, pair.sink, "bob")
            async with (
                live_client(a.url, tb, LIVE) as bob_on_a,
                live_client(b.url, tb, LIVE) as bob_on_b,
            ):
                posted = await gql(
                    ca, ta, 'mutation { postMessage(roomId: "general", body: "@bob hi") { id } }'
                )
                msg = posted["postMessage"]["id"]
                for client in (bob_on_a, bob_on_b):
                    got = await client.wait_for(lambda e: e["type"] == "NOTIFICATION")
                    assert got["notification"]["id"] == msg
                    assert got["notification"]["message"]["body"] == "@bob hi"
                for c in (ca, cb):
                    assert (await gql(c, tb, NOTES))["notifications"]["items"] == [
                        {"id": msg, "kind": "MENTION"}
                    ]
                    assert (await gql(c, tb, ROOM_COUNTS, r="general"))["room"] == {
                        "mentionCount": 1
                    }
                await gql(cb, tb, "mutation($i: ID!) { dismissNotification(id: $i) }", i=msg)
                for client in (bob_on_a, bob_on_b):
                    gone = await client.wait_for(lambda e: e["type"] == "NOTIFICATION_DISMISSED")
                    assert gone["notificationIds"] == [msg]
                # The other process has projected the dismissal by the time it said so.
                assert (await gql(ca, tb, NOTES))["notifications"]["items"] == []
