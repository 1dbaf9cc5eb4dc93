"""Followed threads end to end: automatic and explicit follows, THREAD_REPLY
notifications, per-thread unread from thread markers, live follow events.

Real HTTP and WebSocket against a real server and NATS.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from tests.conftest import AuthEnv
from tests.liveclient import live_client
from tests.test_mentions import notes, say
from tests.test_messaging import gql, ok, users
from tests.test_notifications import LIVE
from tests.test_unread import MARK, RETRACT, team

FOLLOWED = (
    "{ followedThreads { room { id } root { id body } unreadCount } hasUnreadFollowedThreads }"
)
FOLLOW = "mutation($r: ID!, $t: ID!) { followThread(roomId: $r, threadRootId: $t) { id viewerFollowsThread } }"
UNFOLLOW = "mutation($r: ID!, $t: ID!) { unfollowThread(roomId: $r, threadRootId: $t) { id viewerFollowsThread } }"
ROOT = "query($r: ID!, $e: ID!) { room(id: $r) { event(id: $e) { viewerFollowsThread threadUnreadCount } } }"


async def followed(c: httpx.AsyncClient, token: str) -> dict[str, int]:
    """Followed thread root id -> unread count."""
    data = await ok(c, token, FOLLOWED)
    threads = {t["root"]["id"]: t["unreadCount"] for t in data["followedThreads"]}
    assert data["hasUnreadFollowedThreads"] == any(threads.values())
    return threads


async def root_state(c: httpx.AsyncClient, token: str, room: str, root: str) -> Any:
    return (await ok(c, token, ROOT, r=room, e=root))["room"]["event"]


async def test_automatic_follows_and_thread_unread(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb, tc)
            root = (await say(c, ta, room, "a topic"))["id"]
            assert await followed(c, ta) == {}  # no thread yet
            # Bob's first reply: he follows, and so does the root's author.
            r1 = (await say(c, tb, room, "first reply", t=root))["id"]
            assert await followed(c, tb) == {root: 0}  # his own reply is not unread
            assert await followed(c, ta) == {root: 1}
            assert [n["kind"] for n in await notes(c, ta)] == ["THREAD_REPLY"]
            assert await followed(c, tc) == {}
            # Carol is mentioned in the thread: she follows it from then on.
            await say(c, ta, room, "what do you think @carol?", t=root)
            assert await followed(c, tc) == {root: 2}
            assert [n["kind"] for n in await notes(c, tc)] == ["MENTION"]
            assert await followed(c, tb) == {root: 1}
            assert [n["kind"] for n in await notes(c, tb)] == ["THREAD_REPLY"]
            counts = "query($r: ID!) { room(id: $r) { unreadFollowedThreads } }"
            assert (await ok(c, tb, counts, r=room))["room"]["unreadFollowedThreads"] == 1
            assert (await ok(c, tb, counts, r="general"))["room"]["unreadFollowedThreads"] == 0
            assert await root_state(c, tb, room, root) == {
                "viewerFollowsThread": True,
                "threadUnreadCount": 1,
            }
            # The thread's marker clears it; a retracted reply stops counting.
            last = (await say(c, tc, room, "fine by me", t=root))["id"]
            assert (await followed(c, tb))[root] == 2
            await ok(c, tb, MARK, r=room, e=last, t=root)
            assert await followed(c, tb) == {root: 0}
            assert (await ok(c, tb, counts, r=room))["room"]["unreadFollowedThreads"] == 0
            assert (await followed(c, ta))[root] == 2
            await ok(c, tb, RETRACT, r=room, e=r1)
            assert (await followed(c, ta))[root] == 1
            # A non-member reads no thread state.
            outsider = await gql(c, tc, "mutation($r: ID!) { leaveRoom(roomId: $r) }", r=room)
            assert "errors" not in outsider
            assert await followed(c, tc) == {}
            denied = await gql(c, tc, ROOT, r=room, e=root)
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_explicit_follow_and_unfollow_reach_every_client(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb)
            root = (await say(c, ta, room, "announcement"))["id"]
            reply = (await say(c, ta, room, "details", t=root))["id"]
            async with (
                live_client(auth_env.url, tb, LIVE) as tab1,
                live_client(auth_env.url, tb, LIVE) as tab2,
            ):
                got = (await ok(c, tb, FOLLOW, r=room, t=root))["followThread"]
                assert got == {"id": root, "viewerFollowsThread": True}
                for tab in (tab1, tab2):
                    ev = await tab.wait_for(lambda e: e["type"] == "THREAD_FOLLOWED")
                    assert ev["roomId"] == room and ev["eventId"] == root
                await say(c, ta, room, "more details", t=root)
                note = await tab1.wait_for(lambda e: e["type"] == "NOTIFICATION")
                assert note["notification"]["kind"] == "THREAD_REPLY"
                # Unfollowing sticks, even after replying again.
                await ok(c, tb, UNFOLLOW, r=room, t=root)
                await tab2.wait_for(lambda e: e["type"] == "THREAD_UNFOLLOWED")
                await say(c, tb, room, "ok", t=root)
                assert await followed(c, tb) == {}
                before = len(await notes(c, tb))
                await say(c, ta, room, "even more", t=root)
                assert len(await notes(c, tb)) == before
            # Only thread roots of the viewer's rooms can be followed.
            for target in (reply, "no-such-message"):
                bad = await gql(c, tb, FOLLOW, r=room, t=target)
                assert bad["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            denied = await gql(c, tc, FOLLOW, r=room, t=root)
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            dm = (
                await ok(
                    c,
                    ta,
                    "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }",
                    u=[u["bob"][0]],
                )
            )["startDM"]["id"]
            secret = (await say(c, ta, dm, "dm root"))["id"]
            outsider = await gql(c, tc, FOLLOW, r=dm, t=secret)
            missing = await gql(c, tc, FOLLOW, r="no-such-room", t=secret)
            assert outsider["errors"][0]["message"] == missing["errors"][0]["message"]
