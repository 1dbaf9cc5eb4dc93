"""The notification feed end to end: kinds, levels, paging, dismissals, live
events on every client, other users' ids, and a restart.

Real HTTP and WebSocket against a real server and NATS.
"""

from __future__ import annotations

from typing import Any

import httpx
import trio

from actors.events import EntityRef
from actors.ids import new_id
from actors.users.actor import CreateUser
from tests.conftest import AuthEnv, ConfigFactory, NatsProc
from tests.liveclient import live_client
from tests.test_mentions import notes, say
from tests.test_messaging import gql, ok, users
from tests.test_snapshots import _run
from tests.test_unread import team, unread

PAGE = """query($n: Int, $a: String) { notifications(first: $n, after: $a) {
  items { id kind messageId cursor } hasMore endCursor } }"""
DISMISS = "mutation($i: ID!) { dismissNotification(id: $i) }"
LIVE = """subscription { myEvents { type roomId eventId seq userId notificationIds
  notification { id kind messageId message { body } } } }"""
REPLY = """mutation($r: ID!, $b: String!, $p: ID) {
  postMessage(roomId: $r, body: $b, inReplyTo: $p) { id } }"""
SERVER_LEVEL = (
    "mutation($l: NotificationLevel!) { setServerNotificationLevel(level: $l) { level } }"
)
ROOM_LEVEL = """mutation($r: ID!, $l: NotificationLevel, $m: Boolean) {
  setRoomNotificationLevel(roomId: $r, level: $l, muted: $m) { roomId level muted effectiveLevel } }"""
DM = "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }"


def _err(body: dict[str, Any]) -> tuple[str, str]:
    return body["errors"][0]["message"], body["errors"][0]["extensions"]["code"]


async def test_paging_dismissals_and_live_events_on_every_client(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb, tc)
            sent = [(await say(c, ta, room, f"@bob number {i}"))["id"] for i in range(5)]
            first = (await ok(c, tb, PAGE, n=2))["notifications"]
            assert [n["messageId"] for n in first["items"]] == sent[:2:-1][:2]
            assert first["hasMore"] is True
            second = (await ok(c, tb, PAGE, n=2, a=first["endCursor"]))["notifications"]
            third = (await ok(c, tb, PAGE, n=2, a=second["endCursor"]))["notifications"]
            seen = [n["messageId"] for p in (first, second, third) for n in p["items"]]
            assert seen == sent[::-1] and third["hasMore"] is False
            bad = await gql(c, tb, PAGE, n=1000)
            assert _err(bad)[1] == "BAD_USER_INPUT"

            async with (
                live_client(auth_env.url, tb, LIVE) as tab1,
                live_client(auth_env.url, tb, LIVE) as tab2,
                live_client(auth_env.url, tc, LIVE) as carol,
            ):
                new = (await say(c, ta, room, "hey @bob, live"))["id"]
                for tab in (tab1, tab2):
                    got = await tab.wait_for(lambda e: e["type"] == "NOTIFICATION")
                    assert got["notification"]["messageId"] == new
                    assert got["notification"]["kind"] == "MENTION"
                    assert got["notification"]["message"]["body"] == "hey @bob, live"
                # Someone else's notification id is answered like an unknown one.
                stolen = await gql(c, tc, DISMISS, i=new)
                unknown = await gql(c, tc, DISMISS, i="no-such-notification")
                assert _err(stolen) == _err(unknown) == ("no such notification", "NOT_FOUND")
                assert new in {n["messageId"] for n in await notes(c, tb)}
                assert (await ok(c, tb, DISMISS, i=new))["dismissNotification"] is True
                for tab in (tab1, tab2):
                    gone = await tab.wait_for(lambda e: e["type"] == "NOTIFICATION_DISMISSED")
                    assert gone["notificationIds"] == [new] and gone["userId"] == bob
                assert _err(await gql(c, tb, DISMISS, i=new))[1] == "NOT_FOUND"
                left = await ok(c, tb, "mutation { dismissAllNotifications }")
                assert left["dismissAllNotifications"] == 5
                cleared = await tab2.wait_for(
                    lambda e: e["type"] == "NOTIFICATION_DISMISSED" and e["notificationIds"] is None
                )
                assert cleared["seq"] > 0
                assert (await ok(c, tb, "{ hasNotifications }"))["hasNotifications"] is False
                assert await notes(c, tb) == []
                # Carol heard nothing of Bob's.
                assert carol.of_type("NOTIFICATION") == []
                assert carol.of_type("NOTIFICATION_DISMISSED") == []


async def test_kinds_and_levels(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (alice, ta), (bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb)
            mine = await say(c, ta, room, "a message of alice's")
            # Plain messages notify nobody at the default level (MENTIONS).
            assert await notes(c, tb) == []
            await ok(c, tb, REPLY, r=room, b="answer", p=mine["id"])
            assert [n["kind"] for n in await notes(c, ta)] == ["REPLY"]
            dm = (await ok(c, ta, DM, u=[bob]))["startDM"]["id"]
            await say(c, ta, dm, "psst")
            assert [n["kind"] for n in await notes(c, tb)] == ["DM"]

            # Server level NOTHING silences DMs and mentions alike.
            assert (await ok(c, tb, SERVER_LEVEL, l="NOTHING"))["setServerNotificationLevel"] == {
                "level": "NOTHING"
            }
            await say(c, ta, dm, "psst again")
            await say(c, ta, room, "@bob hello?")
            assert len(await notes(c, tb)) == 1
            assert (await unread(c, tb, room))["mentionCount"] == 1  # counted all the same
            # A room at ALL overrides it: every message there notifies.
            pref = (await ok(c, tb, ROOM_LEVEL, r=room, l="ALL"))["setRoomNotificationLevel"]
            assert pref == {"roomId": room, "level": "ALL", "muted": False, "effectiveLevel": "ALL"}
            await say(c, ta, room, "chit chat")
            assert (await notes(c, tb))[0]["kind"] == "MESSAGE"
            # Muted: nothing, whatever the level.
            pref = (await ok(c, tb, ROOM_LEVEL, r=room, l="ALL", m=True))[
                "setRoomNotificationLevel"
            ]
            assert pref["effectiveLevel"] == "NOTHING"
            before = len(await notes(c, tb))
            await say(c, ta, room, "@bob are you there?")
            assert len(await notes(c, tb)) == before
            q = "query($r: ID!) { room(id: $r) { viewerNotificationPreference { muted level } } }"
            assert (await ok(c, tb, q, r=room))["room"]["viewerNotificationPreference"] == {
                "muted": True,
                "level": "ALL",
            }
            # Not a member: no preference to read or set; a DM outsider gets "missing".
            assert (await ok(c, tc, q, r=room))["room"]["viewerNotificationPreference"] is None
            denied = await gql(c, tc, ROOM_LEVEL, r=room, l="ALL")
            assert _err(denied)[1] == "FORBIDDEN"
            outsider = await gql(c, tc, ROOM_LEVEL, r=dm, l="ALL")
            missing = await gql(c, tc, ROOM_LEVEL, r="no-such-room", l="ALL")
            assert _err(outsider) == _err(missing)
            assert alice


async def test_notifications_leave_with_the_room_and_the_author(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            u = await users(auth_env, c)
            (_alice, ta), (_bob, tb), (_carol, tc) = u["alice"], u["bob"], u["carol"]
            room = await team(c, ta, tb, tc)
            other = await team(c, tc, tb)
            await say(c, ta, room, "@bob one")
            await say(c, tc, other, "@bob two")
            assert len(await notes(c, tb)) == 2
            # Alice's own settings and dismissals are events of her notify entity.
            await ok(c, ta, SERVER_LEVEL, l="ALL")
            assert (await ok(c, ta, "mutation { dismissAllNotifications }")) == {
                "dismissAllNotifications": 0
            }
            await ok(c, ta, ROOM_LEVEL, r=room, l="NOTHING")
            alice_ref = EntityRef("notify", u["alice"][0])
            assert len(await services.store.load(alice_ref)) == 2
            # Alice deletes her account: her mention goes with her messages.
            token = (await ok(c, ta, "mutation { requestAccountDeletion { token } }"))[
                "requestAccountDeletion"
            ]["token"]
            await ok(c, ta, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=token)
            while services.deleter.completed < 1:
                await trio.sleep(0.05)
            assert [n["roomId"] for n in await notes(c, tb)] == [other]
            # Her notify events are erased from the stream (what she read is gone too).
            assert await services.store.load(alice_ref) == []
            # Leaving a room drops its notifications.
            await ok(c, tb, "mutation($r: ID!) { leaveRoom(roomId: $r) }", r=other)
            assert await notes(c, tb) == []


async def test_feeds_survive_a_restart(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    """Derived from the stream: a restart (from a snapshot, or a full replay) agrees."""
    with trio.fail_after(120):
        one = await _run(nursery, make_config, nats_server)
        s = one.running.services
        pw = await s.accounts.hasher.hash("a long enough password")
        ids = {}
        for login in ("ann", "ben"):
            uid = ids[login] = new_id()
            done = await s.actors.ask("user", uid, CreateUser(login, login, f"{login}@x.org", pw))
            await s.projector.wait_for(done.last_seq)
            await s.messaging.join_seeded(uid)
        ann, ben = ids["ann"], ids["ben"]
        root = await s.messaging.post(ann, "general", "hi @ben")
        await s.messaging.post(ben, "general", "reply", thread_root=root.id)
        kept = await s.messaging.post(ann, "general", "again @ben")
        dm = await s.messaging.start_dm(ann, [ben])
        await s.messaging.post(ann, dm.id, "dm")
        await s.messaging.notifications.dismiss(ben, root.id)
        await s.messaging.notifications.set_level(ben, "general", "ALL", False)
        before = s.messaging.feed.export_state()
        assert {n.message_id for n in s.messaging.feed.notices(ben)} >= {kept.id}
        await one.stop()
        for env in ({}, {"CHATTO_SNAPSHOTS_ENABLED": "false"}):
            again = await _run(nursery, make_config, nats_server, **env)
            feed = again.running.services.messaging.feed
            assert feed.export_state() == before
            assert feed.mention_count("general", ben, 0) == 2
            assert feed.follows_thread(ann, "general", root.seq)
            assert feed.follows_thread(ben, "general", root.seq)
            assert not feed.follows_thread(ben, "general", kept.seq)
            await again.running.services.messaging.rooms.ensure("general")
            followers = again.running.services.messaging.rooms.thread_followers
            assert sorted(followers("general", root.id)) == sorted([ann, ben])
            await again.stop()
