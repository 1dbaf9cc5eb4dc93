"""Mentions end to end: found at post and edit time, stored as ids, counted
from an index; @room needs a permission; no oracle on accounts or members.

Real HTTP and WebSocket against a real server and NATS.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from actors.events import EntityRef, Envelope, Event, Recorded
from actors.notifications.feed import NotificationFeed
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import (
    MemberJoined,
    MessageEdited,
    MessagePosted,
    MessageRetracted,
    RoomCreated,
)
from chatto.messaging.mentions import mentioned_names
from tests.conftest import AuthEnv
from tests.liveclient import live_client
from tests.test_messaging import gql, ok, users
from tests.test_unread import MARK, READ_EVENTS, RETRACT, SUMMARY, team, unread

POST = """mutation($r: ID!, $b: String!, $t: ID) {
  postMessage(roomId: $r, body: $b, threadRootEventId: $t) { id mentions mentionsRoom } }"""
EDIT = """mutation($r: ID!, $e: ID!, $b: String!) {
  editMessage(roomId: $r, eventId: $e, body: $b) { id mentions mentionsRoom } }"""
NOTES = "{ notifications { items { id kind roomId messageId actorId message { body } } } }"


async def say(c: httpx.AsyncClient, token: str, room: str, body: str, **kw: Any) -> dict[str, Any]:
    return (await ok(c, token, POST, r=room, b=body, **kw))["postMessage"]  # type: ignore[no-any-return]


async def notes(c: httpx.AsyncClient, token: str) -> list[dict[str, Any]]:
    return (await ok(c, token, NOTES))["notifications"]["items"]  # type: ignore[no-any-return]


def test_parsing_finds_logins_not_addresses_or_code() -> None:
    names, room = mentioned_names("hi @Bob, @carol. mail ann@bob.org `@dave` ```@eve``` @x")
    assert names == ["bob", "carol.", "carol"] and room is False
    assert mentioned_names("@here: lunch")[1] is True
    assert mentioned_names("@room!")[1] is True
    assert mentioned_names("me@room.com")[1] is False


async def test_mentions_count_notify_and_follow_edits(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb)
            posted = await say(c, ta, room, "hi @BOB and @alice, see `@bob`")
            # Stored as ids; the author's own name is not a mention.
            assert posted["mentions"] == [bob] and posted["mentionsRoom"] is False
            assert await unread(c, tb, room) == {
                "unreadCount": 1,
                "mentionCount": 1,
                "hasUnread": True,
            }
            assert (await unread(c, ta, room))["mentionCount"] == 0
            assert (await ok(c, tb, SUMMARY))["unread"]["mentionTotal"] == 1
            got = await notes(c, tb)
            assert [(n["kind"], n["messageId"], n["actorId"]) for n in got] == [
                ("MENTION", posted["id"], alice)
            ]
            assert got[0]["message"]["body"] == "hi @BOB and @alice, see `@bob`"
            await say(c, ta, room, "no mention here")
            assert (await unread(c, tb, room))["mentionCount"] == 1

            # Editing the mention out removes it; editing it back in notifies again.
            out = (await ok(c, ta, EDIT, r=room, e=posted["id"], b="hi all"))["editMessage"]
            assert out["mentions"] == []
            assert (await unread(c, tb, room))["mentionCount"] == 0
            assert await notes(c, tb) == []
            async with live_client(auth_env.url, tb, READ_EVENTS) as bob_live:
                back = await ok(c, ta, EDIT, r=room, e=posted["id"], b="hi @bob again")
                assert back["editMessage"]["mentions"] == [bob]
                arrived = await bob_live.wait_for(lambda e: e["type"] == "NOTIFICATION")
                assert arrived["eventId"] == posted["id"] and arrived["roomId"] == room
                assert (await unread(c, tb, room))["mentionCount"] == 1
                # Reading past it: READ_MARKER carries the new mention count.
                last = await say(c, ta, room, "and @bob once more")
                assert (await unread(c, tb, room))["mentionCount"] == 2
                await ok(c, tb, MARK, r=room, e=posted["id"])
                marked = await bob_live.wait_for(lambda e: e["type"] == "READ_MARKER")
                assert marked["mentionCount"] == 1 and marked["unreadCount"] == 2
                await ok(c, tb, MARK, r=room, e=last["id"])
                assert (await unread(c, tb, room))["mentionCount"] == 0

            # A retracted mention stops counting and its notification is gone.
            gone = await say(c, ta, room, "@bob secret")
            assert (await unread(c, tb, room))["mentionCount"] == 1
            await ok(c, ta, RETRACT, r=room, e=gone["id"])
            assert (await unread(c, tb, room))["mentionCount"] == 0
            assert gone["id"] not in {n["messageId"] for n in await notes(c, tb)}
            # Carol (not a member) was never told anything.
            assert await notes(c, tc) == []


async def test_mentioning_outsiders_is_no_oracle(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta)
            # carol exists but is not a member; "nobody" does not exist: same answer.
            real = await gql(c, ta, POST, r=room, b="ping @carol")
            fake = await gql(c, ta, POST, r=room, b="ping @nobody")
            for body in (real, fake):
                del body["data"]["postMessage"]["id"]
            assert (
                real == fake == {"data": {"postMessage": {"mentions": [], "mentionsRoom": False}}}
            )
            assert await notes(c, tc) == []
            # Joining later does not bring the old mention back.
            await ok(c, tc, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
            assert (await unread(c, tc, room))["mentionCount"] == 0
            # A DM outsider is nobody to mention either.
            dm = (
                await ok(
                    c,
                    ta,
                    "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }",
                    u=[u["bob"][0]],
                )
            )["startDM"]["id"]
            sent = await say(c, ta, dm, "@carol @bob")
            assert sent["mentions"] == [u["bob"][0]]
            assert await notes(c, tc) == []
            assert len(await notes(c, tb)) == 1


async def test_room_mentions_need_the_permission(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb, tc)  # alice created it
            # Denied: a plain member's @room stays text and notifies nobody.
            plain = await say(c, tb, room, "@room look")
            assert plain["mentionsRoom"] is False and plain["mentions"] == []
            assert (await unread(c, ta, room))["mentionCount"] == 0
            assert await notes(c, ta) == []
            # The channel's creator may; it counts for everyone but the author.
            loud = await say(c, ta, room, "@here standup, @bob too")
            assert loud["mentionsRoom"] is True and loud["mentions"] == []
            assert (await unread(c, tb, room))["mentionCount"] == 1
            assert (await unread(c, tc, room))["mentionCount"] == 1
            assert (await unread(c, ta, room))["mentionCount"] == 0
            assert [n["kind"] for n in await notes(c, tb)] == ["MENTION"]
            # In #general (seeded, no creator) only roles with it: the owner, not bob.
            assert (await say(c, tb, "general", "@room hi"))["mentionsRoom"] is False
            assert (await say(c, tc, "general", "@room hi"))["mentionsRoom"] is True
            # An explicit deny wins over the creator's right.
            setp = 'mutation($u: String!, $s: String!) { setPermission(subject: $u, scope: $s, permission: "message.mention-room", effect: DENY) }'
            await ok(c, tc, setp, u=f"user:{u['alice'][0]}", s=f"room:{room}")
            assert (await say(c, ta, room, "@room again"))["mentionsRoom"] is False
            # In a DM anyone may.
            dm = (
                await ok(
                    c,
                    tb,
                    "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }",
                    u=[u["alice"][0]],
                )
            )["startDM"]["id"]
            assert (await say(c, tb, dm, "@room hey"))["mentionsRoom"] is True
            assert bob


async def test_mention_index_survives_a_snapshot_restore() -> None:
    rooms = RoomDirectory()
    feed = NotificationFeed(rooms)
    seq = 0

    def apply(event: Event, event_id: str = "") -> None:
        nonlocal seq
        seq += 1
        rec = Recorded(seq, Envelope(event_id or f"e{seq}", EntityRef("room", "r"), 0, event))
        rooms.apply(rec)
        feed.apply(rec)

    apply(RoomCreated("r", "", "channel", "a"))
    for user in "abc":
        apply(MemberJoined(user))
    for i in range(10):
        apply(MessagePosted("ab"[i % 2], "sealed", 1, mentions=("c",)), f"m{i}")
    apply(MessagePosted("a", "sealed", 1, mention_room=True), "all")
    apply(MessagePosted("b", "sealed", 1, thread_root="m0", mentions=("c",)), "t1")
    apply(MessageRetracted("m3", "b", "b"))
    apply(MessageEdited("m4", "a", "sealed", 1, mentions=()))
    restored = NotificationFeed(RoomDirectory())
    await restored.restore_state(feed.export_state())
    assert restored.export_state() == feed.export_state()
    for marker in range(seq + 1):
        for viewer in "abc":
            count = feed.mention_count("r", viewer, marker)
            assert restored.mention_count("r", viewer, marker) == count
    # c: 10 mentions, one retracted, one edited out, plus @room; the thread reply is not counted.
    assert feed.mention_count("r", "c", 0) == 9
    assert feed.mention_count("r", "a", 0) == 0 and feed.mention_count("r", "b", 0) == 1


def test_editing_a_mention_out_keeps_other_reasons() -> None:
    """In a DM, a mention edited out leaves the DM notification in its place."""
    rooms = RoomDirectory()
    feed = NotificationFeed(rooms)
    recs = [
        RoomCreated("", "", "dm", "a", participants=("a", "b", "c")),
        MemberJoined("a"),
        MemberJoined("b"),
        MemberJoined("c"),
        MessagePosted("a", "sealed", 1, mentions=("b",)),
        MessagePosted("c", "sealed", 1),
        MessageEdited("e5", "a", "sealed", 1, mentions=()),
    ]
    for seq, event in enumerate(recs, 1):
        rec = Recorded(seq, Envelope(f"e{seq}", EntityRef("room", "dm-x"), 0, event))
        rooms.apply(rec)
        feed.apply(rec)
    assert [(n.message_id, n.kind) for n in feed.notices("b")] == [("e6", "DM"), ("e5", "DM")]
    assert [(n.message_id, n.kind) for n in feed.notices("c")] == [("e5", "DM")]
    assert feed.mentions_of("dm-x", 5) == ((), False)
    assert all(not i.by_user.get("b") for i in feed.index.values())
