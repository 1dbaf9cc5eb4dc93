"""Old messages through a whole server with a small hot window (issue #22).

Two servers share one NATS: one keeps a window of 20 messages per room
(``[cache] hot_messages``), the other keeps all of this test's history in
memory. Messages far below the small window are edited, reacted to,
pinned, replied to (in a thread and inline) and retracted through the
messaging service; the small server answers GraphQL for them (pinned
messages, ``event(id)``, thread pages, notifications) from the stream, and
its pages, notification feeds and unread counts equal the other server's,
except the retracted old message, which it shows as absent, as a replay
would.
"""

from __future__ import annotations

import json

import attrs
import httpx
import trio

from actors.ids import new_id
from actors.users.actor import CreateUser
from chatto.messaging.history import encode_cursor
from chatto.messaging.service import MessagingService
from chatto.services import Services
from tests.authflow import bearer, login_token
from tests.conftest import ConfigFactory, NatsProc
from tests.liveclient import live_client
from tests.test_snapshots import _run

PW = "a long enough password"
HOT = 20
ROOM_QUERY = """query($r: ID!, $old: ID!, $gone: ID!) { room(id: $r) {
  pinnedMessages { id body }
  event(id: $old) { id body editedAt reactions { emoji count } }
  gone: event(id: $gone) { id }
  events(threadRootId: $old, limit: 10) { events { id body } }
} }"""
LIVE = "subscription { myEvents { type roomId eventId message { id body retracted } } }"
NOTICES = "{ notifications { items { kind message { id body } } } }"


async def _users(s: Services, *logins: str) -> list[str]:
    out = []
    pw = await s.accounts.hasher.hash(PW)
    for login in logins:
        uid = new_id()
        done = await s.actors.ask("user", uid, CreateUser(login, login, f"{login}@example.com", pw))
        await s.projector.wait_for(done.last_seq)
        out.append(uid)
    return out


async def _walk(m: MessagingService, room: str, thread: str = "") -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = None
    while True:
        page = await m.page(room, cursor, None, 7, thread)
        out[:0] = [attrs.asdict(v) for v in page.events]
        if not page.has_older:
            return out
        cursor = encode_cursor(page.events[0].seq)


async def test_old_messages_through_a_server_with_a_small_window(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    with trio.fail_after(120):
        small = await _run(
            nursery,
            make_config,
            nats_server,
            CHATTO_CACHE_HOT_MESSAGES=str(HOT),
            CHATTO_CACHE_COLD_PAGES="4",
        )
        s = small.running.services
        full = await _run(nursery, make_config, nats_server, CHATTO_CACHE_HOT_MESSAGES="100000")
        f = full.running.services
        alice, bob = await _users(s, "alice", "bob")
        m = s.messaging
        room = (await m.create_room(alice, "history", "", "")).id
        await m.join(bob, room)
        ids = [(await m.post(alice, room, f"message {i}")).id for i in range(6 * HOT)]
        old, edited, reacted, pinned, gone, replied = ids[:6]
        assert m.rooms.view(room, old) is None  # far below the window
        async with httpx.AsyncClient(base_url=small.url, timeout=20) as c:
            ta, tb = await login_token(c, "alice", PW), await login_token(c, "bob", PW)
        # Changes aimed at old messages, through the actors and the projector;
        # live events carry their views, read back from the stream.
        async with live_client(small.url, ta, LIVE) as live:
            reply = await m.post(bob, room, "late reply", thread_root=old)
            await m.post(bob, room, "an answer", in_reply_to=replied)
            view = await m.edit(alice, room, edited, "edited long after")
            assert view.edited_ms and view.body_event_id != edited
            view = await m.react(bob, room, reacted, "tada", True)
            assert view.reactions == {"tada": [bob]}
            await m.pin(alice, room, pinned, True)
            await m.retract(alice, room, gone, False)
            await m.mark_read(bob, room, ids[3], "")
            got = await live.wait_for(lambda e: e["type"] == "MESSAGE_RETRACTED")
            assert got["message"] == {"id": gone, "body": None, "retracted": True}
            got = live.of_type("MESSAGE_EDITED")[0]["message"]
            assert got == {"id": edited, "body": "edited long after", "retracted": False}
            assert live.of_type("REACTION_CHANGED")[0]["message"]["id"] == reacted
            assert live.of_type("MESSAGE_PINNED")[0]["message"]["body"] == "message 3"
        facts = m.rooms.facts(room, gone)
        assert facts is not None and facts.retracted
        stats = m.rooms.cache_statistics()
        assert stats["hot_evicted"] >= 4 * HOT and stats["hot_messages"] <= 4 * HOT, stats

        async with httpx.AsyncClient(base_url=small.url, timeout=20) as c:
            r = await c.post(
                "/api/graphql",
                json={"query": ROOM_QUERY, "variables": {"r": room, "old": edited, "gone": gone}},
                headers=bearer(ta),
            )
            data = r.json()["data"]["room"]
            assert data["pinnedMessages"] == [{"id": pinned, "body": "message 3"}]
            assert data["event"]["body"] == "edited long after" and data["event"]["editedAt"]
            assert data["gone"] is None
            r = await c.post(
                "/api/graphql",
                json={"query": ROOM_QUERY, "variables": {"r": room, "old": old, "gone": reacted}},
                headers=bearer(tb),
            )
            data = r.json()["data"]["room"]
            assert data["events"]["events"] == [{"id": reply.id, "body": "late reply"}]
            assert data["gone"]["id"] == reacted
            r = await c.post("/api/graphql", json={"query": NOTICES}, headers=bearer(ta))
            items = r.json()["data"]["notifications"]["items"]
            kinds = {(n["kind"], n["message"]["body"]) for n in items}
            # The root's author follows its thread; the inline reply names her.
            assert kinds == {("THREAD_REPLY", "late reply"), ("REPLY", "an answer")}

        # A server that lived through it all with everything in memory agrees,
        # apart from the retracted old message (absent here, a tombstone there).
        await f.projector.wait_for(await s.store.head())
        mine, theirs = await _walk(m, room), await _walk(f.messaging, room)
        assert [v for v in theirs if v["id"] != gone] == mine
        assert [v["id"] for v in theirs if v["retracted"]] == [gone]
        assert await _walk(m, room, old) == await _walk(f.messaging, room, old)
        assert json.dumps(s.messaging.feed.export_state(), sort_keys=True) == json.dumps(
            f.messaging.feed.export_state(), sort_keys=True
        )
        for user in (alice, bob):
            a = await m.markers.unread(user, m.rooms.rooms[room])
            b = await f.messaging.markers.unread(user, f.messaging.rooms.rooms[room])
            assert a == b
        await full.stop()
        await small.stop()
