"""Unread state, READ_MARKER live events and ``Room.event(id)``, end to end.

Real HTTP and WebSocket against a real server and NATS.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from actors.events import EntityRef, Envelope, Event, Recorded
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import MemberJoined, MessagePosted, MessageRetracted, RoomCreated
from tests.conftest import AuthEnv
from tests.liveclient import live_client
from tests.test_messaging import POST, gql, ok, users

ROOM_UNREAD = "query($r: ID!) { room(id: $r) { unreadCount mentionCount hasUnread } }"
SUMMARY = "{ unread { total mentionTotal rooms { id unreadCount hasUnread } } }"
MARK = "mutation($r: ID!, $e: ID!, $t: ID) { markRead(roomId: $r, eventId: $e, threadRootId: $t) }"
RETRACT = "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }"
EVENT = (
    "query($r: ID!, $e: ID!) { room(id: $r) { event(id: $e) { id body retracted threadRootId } } }"
)
READ_EVENTS = """subscription { myEvents { type roomId eventId seq userId threadRootId
  unreadCount mentionCount } }"""


async def unread(c: httpx.AsyncClient, token: str, room: str) -> dict[str, Any]:
    return (await ok(c, token, ROOM_UNREAD, r=room))["room"]  # type: ignore[no-any-return]


async def post(c: httpx.AsyncClient, token: str, room: str, body: str, **kw: Any) -> str:
    return (await ok(c, token, POST, r=room, b=body, **kw))["postMessage"]["id"]  # type: ignore[no-any-return]


async def team(c: httpx.AsyncClient, owner: str, *members: str) -> str:
    room = (await ok(c, owner, 'mutation { createRoom(name: "team") { id } }'))["createRoom"]["id"]
    for token in members:
        await ok(c, token, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
    return room  # type: ignore[no-any-return]


async def test_counts_follow_posts_marks_and_retractions(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb) = u["alice"], u["bob"]
            room = await team(c, ta, tb)
            assert await unread(c, tb, room) == {
                "unreadCount": 0,
                "mentionCount": 0,
                "hasUnread": False,
            }
            first = await post(c, ta, room, "one")
            await post(c, ta, room, "two")
            mine = await post(c, tb, room, "bob's own")
            assert (await unread(c, tb, room))["unreadCount"] == 2  # own post not counted
            assert (await unread(c, ta, room))["unreadCount"] == 1  # bob's, for alice
            # A thread reply is not on the main timeline; an echoed one is.
            await post(c, ta, room, "in thread", t=first)
            assert (await unread(c, tb, room))["unreadCount"] == 2
            await ok(
                c,
                ta,
                'mutation($r: ID!, $t: ID!) { postMessage(roomId: $r, body: "echo", threadRootEventId: $t, echo: true) { id } }',
                r=room,
                t=first,
            )
            assert (await unread(c, tb, room))["unreadCount"] == 3

            summary = (await ok(c, tb, SUMMARY))["unread"]
            assert summary["mentionTotal"] == 0
            by_room = {r["id"]: r["unreadCount"] for r in summary["rooms"]}
            assert by_room[room] == 3
            assert summary["total"] == sum(by_room.values())
            assert all(r["hasUnread"] for r in summary["rooms"])

            # Marking read zeroes; only later posts by others count again.
            assert (await ok(c, tb, MARK, r=room, e=mine))["markRead"] is True
            assert (await unread(c, tb, room))["unreadCount"] == 1  # the echo, after bob's
            last = await post(c, ta, room, "three")
            await ok(c, tb, MARK, r=room, e=last)
            assert await unread(c, tb, room) == {
                "unreadCount": 0,
                "mentionCount": 0,
                "hasUnread": False,
            }
            assert room not in {r["id"] for r in (await ok(c, tb, SUMMARY))["unread"]["rooms"]}

            # Retracted messages stop counting (the author's and a moderator's).
            gone = await post(c, ta, room, "oops")
            kept = await post(c, ta, room, "keep")
            await post(c, tb, room, "bob again")
            assert (await unread(c, tb, room))["unreadCount"] == 2
            await ok(c, ta, RETRACT, r=room, e=gone)
            assert (await unread(c, tb, room))["unreadCount"] == 1
            # Retracting one's own message changes nothing for oneself.
            own = await post(c, tb, room, "bob retracts this")
            await ok(c, tb, RETRACT, r=room, e=own)
            assert (await unread(c, tb, room))["unreadCount"] == 1
            await ok(c, tb, MARK, r=room, e=kept)
            assert (await unread(c, tb, room))["unreadCount"] == 0


async def test_marking_read_reaches_every_client_of_that_user(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb, tc)
            first = await post(c, ta, room, "one")
            second = await post(c, ta, room, "two")
            async with (
                live_client(auth_env.url, tb, READ_EVENTS) as tab1,
                live_client(auth_env.url, tb, READ_EVENTS) as tab2,
                live_client(auth_env.url, tc, READ_EVENTS) as carol,
            ):
                await ok(c, tb, MARK, r=room, e=first)
                for tab in (tab1, tab2):
                    got = await tab.wait_for(lambda e: e["type"] == "READ_MARKER")
                    assert got["roomId"] == room and got["eventId"] == first
                    assert got["userId"] == bob and got["threadRootId"] is None
                    assert got["unreadCount"] == 1 and got["mentionCount"] == 0
                # A thread's marker: the event names the thread, no room counts.
                await ok(c, tb, MARK, r=room, e=second, t=first)
                got = await tab2.wait_for(
                    lambda e: e["type"] == "READ_MARKER" and e["threadRootId"] == first
                )
                assert got["unreadCount"] is None
                await ok(c, tb, MARK, r=room, e=second)
                got = await tab2.wait_for(
                    lambda e: (
                        e["type"] == "READ_MARKER"
                        and e["eventId"] == second
                        and e["threadRootId"] is None
                    )
                )
                assert got["unreadCount"] == 0
                # Another member's client hears nothing of bob's markers.
                await ok(c, tc, MARK, r=room, e=first)
                await carol.wait_for(lambda e: e["type"] == "READ_MARKER")
                assert all(e["userId"] != bob for e in carol.of_type("READ_MARKER"))
                assert all(e["userId"] == bob for e in tab1.of_type("READ_MARKER"))


async def test_outsiders_learn_nothing(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta)
            msg = await post(c, ta, room, "members only")
            # A channel's non-member: no figures, as if there were nothing to count.
            assert await unread(c, tb, room) == {
                "unreadCount": None,
                "mentionCount": None,
                "hasUnread": None,
            }
            denied = await gql(c, tb, EVENT, r=room, e=msg)
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert room not in {r["id"] for r in (await ok(c, tb, SUMMARY))["unread"]["rooms"]}
            refused = await gql(c, tb, MARK, r=room, e=msg)
            assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            # A DM's outsider (the owner too) gets what a missing room gives.
            dm = (
                await ok(
                    c, ta, "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }", u=[bob]
                )
            )["startDM"]["id"]
            dm_msg = await post(c, ta, dm, "psst")
            assert (await unread(c, tb, dm))["unreadCount"] == 1
            assert (await ok(c, tb, EVENT, r=dm, e=dm_msg))["room"]["event"]["body"] == "psst"
            for query, extra in ((ROOM_UNREAD, {}), (EVENT, {"e": dm_msg})):
                outsider = await gql(c, tc, query, r=dm, **extra)
                missing = await gql(c, tc, query, r="no-such-room", **extra)
                assert outsider == missing == {"data": {"room": None}}
            assert dm not in {r["id"] for r in (await ok(c, tc, SUMMARY))["unread"]["rooms"]}
            for e in (dm_msg, "no-such-event"):
                outsider = await gql(c, tc, MARK, r=dm, e=e)
                missing = await gql(c, tc, MARK, r="no-such-room", e=e)
                same = [
                    (b["errors"][0]["message"], b["errors"][0]["extensions"]["code"])
                    for b in (outsider, missing)
                ]
                assert same[0] == same[1] and same[0][1] == "NOT_FOUND"


async def test_single_event_for_deep_links(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb) = u["alice"], u["bob"]
            room = await team(c, ta, tb)
            other = await team(c, ta)
            root = await post(c, ta, room, "root")
            reply = await post(c, tb, room, "reply", t=root)
            elsewhere = await post(c, ta, other, "elsewhere")
            got = (await ok(c, tb, EVENT, r=room, e=root))["room"]["event"]
            assert got == {"id": root, "body": "root", "retracted": False, "threadRootId": None}
            got = (await ok(c, tb, EVENT, r=room, e=reply))["room"]["event"]
            assert got["body"] == "reply" and got["threadRootId"] == root
            # Unknown ids, and ids of another room, are null alike.
            assert (await ok(c, ta, EVENT, r=room, e="nope"))["room"]["event"] is None
            assert (await ok(c, ta, EVENT, r=room, e=elsewhere))["room"]["event"] is None
            # Retracted: the same shape as history shows.
            await ok(c, tb, RETRACT, r=room, e=reply)
            got = (await ok(c, ta, EVENT, r=room, e=reply))["room"]["event"]
            page = await ok(
                c,
                ta,
                "query($r: ID!, $t: ID!) { room(id: $r) { events(threadRootId: $t) { events { id body retracted threadRootId } } } }",
                r=room,
                t=root,
            )
            assert page["room"]["events"]["events"] == [got]
            assert got["retracted"] is True and got["body"] is None


async def test_unread_index_survives_a_snapshot_restore() -> None:
    """The index is not in snapshots: a restore rebuilds the same one."""
    rooms = RoomDirectory()
    seq = 0

    def apply(event: Event, event_id: str = "") -> None:
        nonlocal seq
        seq += 1
        rooms.apply(
            Recorded(seq, Envelope(event_id or f"e{seq}", EntityRef("room", "r"), 0, event))
        )

    apply(RoomCreated("r", "", "channel", "a"))
    apply(MemberJoined("a"))
    for i in range(12):
        apply(MessagePosted("ab"[i % 2], "sealed", 1), f"m{i}")
    apply(MessagePosted("b", "sealed", 1, thread_root="m0"), "t1")
    apply(MessageRetracted("m3", "b", "b"))
    apply(MessageRetracted("m4", "a", "a"))
    restored = RoomDirectory()
    await restored.restore_state(rooms.export_state())
    before, after = rooms.rooms["r"], restored.rooms["r"]
    assert after.unread == before.unread
    for marker in range(seq + 1):
        for viewer in "abc":
            count = before.unread.unread(before.timeline.seqs, viewer, marker)
            assert after.unread.unread(after.timeline.seqs, viewer, marker) == count
    assert before.unread.unread(before.timeline.seqs, "a", 0) == 5  # b's 6, one retracted
