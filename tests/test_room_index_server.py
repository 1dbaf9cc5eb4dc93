"""Room history indexes loaded on demand, through a whole server (issue #22).

Two servers share one NATS: ``lazy`` keeps at most one room's history index
in memory (``[cache] index_rooms = 1``) and a window of 5 messages, the
other the same window and every index (no snapshots: it cannot evict). Before each
operation the lazy server writes a snapshot (its indexes become objects)
and reads another room, so the room operated on is not resident: edits,
reactions, thread and inline replies, mentions, read markers, retractions
and an account deletion aimed at old messages, live events for them,
history pages, unread and mention counts, notification feeds and followed
threads must all equal the other server's. Then the lazy server restarts
from its snapshot (no index loaded) and still agrees; superseded index
objects are deleted; the resident count stays within its bound.
"""

from __future__ import annotations

import json
import time
import zlib

import attrs
import httpx
import trio

from actors.rooms.indexblob import MAGIC
from actors.rooms.resident import PREFIX
from actors.rooms.sweep import MANIFEST
from chatto.messaging.attachments import Upload
from chatto.messaging.history import encode_cursor
from chatto.messaging.service import MessagingService
from chatto.services import Services
from chatto.snapshot_store import NatsIndexObjects
from tests.authflow import bearer, login_token
from tests.conftest import ConfigFactory, NatsProc
from tests.liveclient import live_client
from tests.test_hot_window_server import PW, _users
from tests.test_messaging import ok
from tests.test_snapshots import _run

LIVE = """subscription { myEvents { type roomId eventId seq unreadCount mentionCount
  message { id body retracted reactions { emoji count } } } }"""
LAZY = {
    "CHATTO_CACHE_INDEX_ROOMS": "1",
    "CHATTO_CACHE_HOT_MESSAGES": "5",
    "CHATTO_CACHE_COLD_PAGES": "0",
    "CHATTO_METRICS_ENABLED": "true",
}


async def _walk(m: MessagingService, room: str, thread: str = "") -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    cursor = None
    while True:
        page = await m.page(room, cursor, None, 4, thread)
        out[:0] = [attrs.asdict(v) for v in page.events]
        if not page.has_older:
            return out
        cursor = encode_cursor(page.events[0].seq)


async def _park(s: Services, side: str, author: str, away: str) -> None:
    """Snapshot (indexes become clean objects), then use ``side`` until
    ``away``'s index is evicted."""
    await s.messaging.post(author, side, "elsewhere")
    assert await s.projector.write_snapshot()
    await s.messaging.page(side, None, None, 1)
    assert s.messaging.rooms.rooms[away].resident is None, s.messaging.rooms.cache_statistics()


async def _state(s: Services, rooms: list[str], users: list[str], roots: list[str]) -> object:
    """Everything a client can read of these rooms, for comparison."""
    m = s.messaging
    pages = {r: await _walk(m, r) for r in rooms}
    threads = {root: await _walk(m, rooms[0], root) for root in roots}
    unread = {}
    for user in users:
        for r in rooms:
            if user in m.rooms.rooms[r].members:
                unread[user, r] = await m.markers.unread(user, m.rooms.rooms[r])
        with_unread = await m.markers.rooms_with_unread(user)
        unread[user, "*"] = [(room.id, u) for room, u in with_unread]  # type: ignore[assignment]
        followed = await m.notifications.followed_threads(user)
        unread[user, "threads"] = [(t.root.id, t.unread) for t in followed]  # type: ignore[assignment]
    feed = json.dumps(m.feed.export_state(), sort_keys=True)
    return pages, threads, unread, feed


async def test_a_server_with_one_resident_index_answers_like_a_full_one(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    with trio.fail_after(180):
        lazy = await _run(nursery, make_config, nats_server, **LAZY)
        s = lazy.running.services
        # The same windows, every index resident (without snapshots none is evicted).
        full = await _run(
            nursery, make_config, nats_server, **LAZY, CHATTO_SNAPSHOTS_ENABLED="false"
        )
        f = full.running.services
        alice, bob, carol = users = await _users(s, "alice", "bob", "carol")
        m = s.messaging
        rooms = [(await m.create_room(alice, f"history {i}", "", "")).id for i in range(3)]
        side = (await m.create_room(alice, "side", "", "")).id
        for r in rooms:
            for user in (bob, carol):
                await m.join(user, r)
        # Attachments of old messages: in the room's index, read back with it.
        files = {}
        for name in ("kept", "gone"):
            att = await s.attachments.upload(
                alice, rooms[0], Upload(f"{name}.txt", "text/plain", name.encode())
            )
            files[name] = att.id, (await m.post(alice, rooms[0], name, attachments=(att.id,))).id
        posted: dict[str, list[str]] = {r: [] for r in rooms}
        for i in range(20):
            for r in rooms:
                author = users[i % 3]
                body = f"message {i} @bob" if i % 4 == 0 else f"message {i}"
                posted[r].append((await m.post(author, r, body)).id)
        main = rooms[0]
        old, edited, reacted, replied, gone, root = posted[main][:6]
        async with httpx.AsyncClient(base_url=lazy.url, timeout=20) as c:
            ta = await login_token(c, "alice", PW)
        async with live_client(lazy.url, ta, LIVE) as live:
            await _park(s, side, alice, main)
            await m.edit(bob, main, edited, "edited long after")  # its author
            await _park(s, side, alice, main)
            await m.react(bob, main, reacted, "tada", True)
            await _park(s, side, alice, main)
            await m.post(bob, main, "late reply @alice", thread_root=root)
            await _park(s, side, alice, main)
            await m.post(carol, main, "an answer", in_reply_to=replied)
            await _park(s, side, alice, main)
            await m.retract(bob, main, gone, False)
            await _park(s, side, alice, main)
            await m.retract(alice, main, files["gone"][1], False)
            await _park(s, side, alice, main)
            # Served from an index that is not in memory; a retracted message's file is gone.
            async with httpx.AsyncClient(base_url=lazy.url, timeout=20) as c:
                kept = await c.get(
                    f"/assets/attachments/{main}/{files['kept'][0]}", headers=bearer(ta)
                )
                assert kept.status_code == 200 and kept.content == b"kept"
                await _park(s, side, alice, main)
                gone_file = f"/assets/attachments/{main}/{files['gone'][0]}"
                assert (await c.get(gone_file, headers=bearer(ta))).status_code == 404
                await _park(s, side, alice, main)
                listed = await ok(
                    c,
                    ta,
                    "query($r: ID!, $e: ID!) { room(id: $r) { event(id: $e) { attachments { id name } } } }",
                    r=main,
                    e=files["kept"][1],
                )
                assert listed["room"]["event"]["attachments"] == [
                    {"id": files["kept"][0], "name": "kept.txt"}
                ]
            await _park(s, side, alice, main)
            await m.mark_read(alice, main, posted[main][10], "")
            await _park(s, side, alice, main)
            await m.notifications.follow(carol, main, old, True)
            got = await live.wait_for(lambda e: e["type"] == "READ_MARKER")
            theirs = f.messaging.markers.count(f.messaging.rooms.rooms[main], alice, got["seq"])
            assert (got["unreadCount"], got["mentionCount"]) == (theirs.count, theirs.mentions)
            assert theirs.count > 0
            edits = live.of_type("MESSAGE_EDITED")
            assert edits[0]["message"]["body"] == "edited long after"
            assert live.of_type("REACTION_CHANGED")[0]["message"]["reactions"] == [
                {"emoji": "\N{PARTY POPPER}", "count": 1}
            ]
            retracted = live.of_type("MESSAGE_RETRACTED")[0]["message"]
            assert retracted == {"id": gone, "body": None, "retracted": True, "reactions": []}
        # Account deletion while its rooms' indexes are not resident.
        await _park(s, side, alice, main)
        await s.deleter.request(carol, carol)
        while not s.directory.users[carol].deleted:
            await trio.sleep(0.02)
        await f.projector.wait_for(await s.store.head())
        await _park(s, side, alice, main)

        stats = m.rooms.cache_statistics()
        assert stats["index_loaded"] >= 10 and stats["index_evicted"] >= 10, stats
        ours = await _state(s, rooms, users, [old, root])
        stats = m.rooms.cache_statistics()
        # Walking every room: the bound, plus the batch's and the reader's rooms.
        assert stats["index_rooms"] <= 1 + stats["index_dirty"] + 2, stats
        assert ours == await _state(f, rooms, users, [old, root])
        # Operators see it: /readyz and /metrics (the full server cannot evict).
        async with httpx.AsyncClient(timeout=20) as c:
            cache = (await c.get(f"{lazy.url}/readyz")).json()["cache"]
            assert cache["index_evictable"] == 1 and cache["max_index_rooms"] == 1
            assert cache["index_loaded"] >= 10 and cache["index_written"] > 0
            metrics = (await c.get(f"{lazy.url}/metrics")).text
            assert "chatto_index_loaded" in metrics and "chatto_index_rooms_max 1" in metrics
            cache = (await c.get(f"{full.url}/readyz")).json()["cache"]
            assert cache["index_evictable"] == 0 and cache["max_index_rooms"] == 0
            assert cache["index_evicted"] == 0 and cache["index_dirty"] == 0

        # Superseded objects are deleted one snapshot later; referenced ones stay.
        objects = NatsIndexObjects(s.bridge)
        await _park(s, side, alice, main)
        await _park(s, side, alice, main)
        refs = {r.index_ref for r in m.rooms.rooms.values() if r.index_ref}
        stored = await objects.names(PREFIX)
        assert refs <= stored and len(stored - refs) <= 1, (refs, stored)
        # Its manifest names what it references (other processes' sweeps keep them).
        manifest = json.loads(await objects.get(f"{MANIFEST}{m.rooms.indexes.token}"))
        assert set(manifest["refs"]) == refs
        listed = await objects.listing(PREFIX)
        assert all(abs(when - time.time()) < 300 for when in listed.values()), listed
        # What an object store copy shows: numbers, hashes, sealed names; no
        # user id, body or file name (the attachments' names are sealed).
        texts = [zlib.decompress((await objects.get(n))[len(MAGIC) :]).decode() for n in stored]
        assert any(files["kept"][0] in text for text in texts)  # the attachment is in one
        for text in texts:
            assert not any(u in text for u in users)
            assert "kept.txt" not in text and "message 1" not in text and "late reply" not in text
        assert stats["index_deleted"] > 0 or m.rooms.cache_statistics()["index_deleted"] > 0
        await lazy.stop()

        # A start from the snapshot loads no index; every answer is the same.
        again = await _run(nursery, make_config, nats_server, **LAZY)
        s2 = again.running.services
        assert s2.projector.restored_seq > 0
        assert all(r.resident is None for r in s2.messaging.rooms.rooms.values() if r.index_ref)
        assert await _state(s2, rooms, users, [old, root]) == ours
        await again.stop()
        await full.stop()


async def test_processes_sharing_the_store_start_from_each_others_snapshots(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    """Two lazy processes write snapshots and index objects into one store in
    turn (names never clash: a token per process); the second starts from the
    first's snapshot and references its objects; after both have superseded
    and deleted objects, a third starts from the newest snapshot, finds every
    object it names, and answers like a process with every index resident."""
    with trio.fail_after(180):
        one = await _run(nursery, make_config, nats_server, **LAZY)
        a = one.running.services
        alice, bob = users = await _users(a, "alice", "bob")
        rooms = [(await a.messaging.create_room(alice, f"r{i}", "", "")).id for i in range(4)]
        for r in rooms:
            await a.messaging.join(bob, r)
            for i in range(8):
                await a.messaging.post(users[i % 2], r, f"message {i}")
        assert await a.projector.write_snapshot()
        two = await _run(nursery, make_config, nats_server, **LAZY)
        b = two.running.services
        assert b.projector.restored_seq > 0
        assert a.messaging.rooms.indexes.token != b.messaging.rooms.indexes.token
        # Two rooms change (in both processes), two never do.
        for turn in range(3):
            for s in (a, b):
                for r in rooms[:2]:
                    await a.messaging.post(bob, r, f"turn {turn}")
                await b.projector.wait_for(await a.store.head())
                assert await s.projector.write_snapshot()
        refs = {r.index_ref for r in b.messaging.rooms.rooms.values() if r.index_ref}
        tokens = {ref.split(".")[-2] for ref in refs}
        assert tokens == {a.messaging.rooms.indexes.token, b.messaging.rooms.indexes.token}
        assert a.messaging.rooms.cache_statistics()["index_deleted"] > 0
        await one.stop()
        await two.stop()
        three = await _run(nursery, make_config, nats_server, **LAZY)
        c = three.running.services
        assert c.projector.restored_seq > 0
        full = await _run(
            nursery, make_config, nats_server, **LAZY, CHATTO_SNAPSHOTS_ENABLED="false"
        )
        f = full.running.services
        await f.projector.wait_for(await c.store.head())
        assert await _state(c, rooms, users, []) == await _state(f, rooms, users, [])
        await full.stop()
        await three.stop()
