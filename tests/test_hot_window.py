"""The hot window (issue #22): a bounded read model pages like a fully hot one.

Two projectors follow the same stream: one keeps every view in memory
(``hot_messages = 0``), the other only the newest 50 main-timeline messages
of a room and the replies after them. The room (``test_cold_history``'s
builder: several thousand messages, threads, echoes, reactions added and
removed, edits, late changes and replies aimed at the oldest messages) then
gets retractions of old (cold) messages and replies, and of hot ones that
later leave the window. Walking every page of the main timeline and of every
thread, both ways, must give the fully hot model's messages field for field,
except that a retracted message is absent once outside the window (as on a
replay from zero; a reply so dropped leaves its root's ``reply_count``).
"""

from __future__ import annotations

import gc
import json
import logging
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import pytest
import trio

from actors.hub import Hub
from actors.notifications.feed import NotificationFeed
from actors.projector import Projector
from actors.rooms.directory import MessageView, RoomDirectory
from actors.rooms.events import MessagePosted, MessageRetracted, RoomCreated
from actors.snapshot import decode_snapshot, encode_snapshot
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM
from chatto.eventstore import JetStreamEventStore
from chatto.messaging.cold import ColdReader
from chatto.messaging.history import History, encode_cursor
from chatto.snapshot_store import NatsSnapshotStore
from tests.test_cold_history import MESSAGES, ROOM, Writer, _build, _stored_of

HOT = 50
PAGE = 50


@attrs.define
class Model:
    rooms: RoomDirectory
    feed: NotificationFeed
    projector: Projector
    history: History


@asynccontextmanager
async def following(bridge: NatsBridge, hot: int, cold_pages: int) -> AsyncIterator[Model]:
    rooms = RoomDirectory(cold_pages=cold_pages, hot_messages=hot)
    feed = NotificationFeed(rooms)
    projector = Projector(JetStreamEventStore(bridge), [rooms, feed], Hub())
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        yield Model(rooms, feed, projector, History(rooms, ColdReader(bridge, rooms)))
        nursery.cancel_scope.cancel()


async def walk(history: History, thread: str, forwards: bool) -> list[MessageView]:
    """Every message of the main timeline (or a thread), page by page."""
    out: list[MessageView] = []
    cursor: str | None = encode_cursor(0) if forwards else None
    while True:
        if forwards:
            page = await history.page(ROOM, None, cursor, PAGE, thread)
            out.extend(page.events)
        else:
            page = await history.page(ROOM, cursor, None, PAGE, thread)
            out[:0] = page.events
        if not page.events or not (page.has_newer if forwards else page.has_older):
            return out
        edge = page.events[-1] if forwards else page.events[0]
        cursor = encode_cursor(edge.seq)


def _expected(full: Model, bounded: Model, views: list[MessageView]) -> list[dict[str, object]]:
    """The fully hot model's rows as the bounded one shows them."""
    shown = bounded.rooms.rooms[ROOM].tombstones
    full_room = full.rooms.rooms[ROOM]
    gone = {s for s, v in full_room.hot.items() if v.retracted and s not in shown}
    rows = []
    for v in views:
        if v.seq in gone:
            continue
        row = attrs.asdict(v)
        thread = full_room.threads.get(v.id)
        if thread is not None:
            row["reply_count"] = sum(1 for s in thread.seqs if s not in gone)
        rows.append(row)
    return rows


def _retract(w: Writer, ids: list[str], by: str) -> None:
    for mid in ids:
        w.add(MessageRetracted(mid, by, by))


async def _erase(bridge: NatsBridge, w: Writer, ids: list[str]) -> None:
    """As MessagingService.retract does: the posts (and their edits) are erased."""
    for seq in sorted(s for mid in ids for s in _stored_of(w, mid)):
        await bridge.erase_msg(EVENT_STREAM, seq)


async def test_bounded_model_pages_like_a_fully_hot_one(bridge: NatsBridge) -> None:
    with trio.fail_after(120 + MESSAGES / 200):
        rng = random.Random(11)
        w = Writer(bridge)
        async with (
            following(bridge, 0, 0) as full,
            following(bridge, HOT, 64) as bounded,
        ):
            top, retracted = await _build(w, rng)
            await full.projector.wait_for(await w.flush())
            room = full.rooms.rooms[ROOM]
            who = room.created_by
            # Old replies (cold in the bounded model) retracted as well.
            old_replies = [
                room.hot[s].id for line in list(room.threads.values())[:40] for s in line.seqs[:1]
            ]
            replies = rng.sample(old_replies, 6)
            _retract(w, replies, who)
            await w.flush()
            # Then hot messages retracted, which leave the window afterwards...
            leaving = [w.add(MessagePosted(who, f"soon {i}", 1)) for i in range(30)]
            await w.flush()
            _retract(w, leaving[-3:], who)
            for i in range(HOT + 10):
                w.add(MessagePosted(who, f"later {i}", 1))
            # ...and some that stay in it (tombstones on both sides).
            staying = [w.add(MessagePosted(who, f"last {i}", 1)) for i in range(20)]
            await w.flush()
            _retract(w, staying[2:5], who)
            head = await w.flush()
            await full.projector.wait_for(head)
            await bounded.projector.wait_for(head)
            await _erase(bridge, w, [*retracted, *replies, *leaving[-3:], *staying[2:5]])

            b_room = bounded.rooms.rooms[ROOM]
            assert set(b_room.tombstones) == {w.seq_of[m] for m in staying[2:5]}
            stats = bounded.rooms.cache_statistics()
            assert stats["hot_evicted"] > len(top) - 2 * HOT, stats
            assert len(bounded.rooms.messages) <= 2 * HOT
            for forwards in (False, True):
                got = await walk(bounded.history, "", forwards)
                want = await walk(full.history, "", forwards)
                assert [attrs.asdict(v) for v in got] == _expected(full, bounded, want)
            for root in list(room.threads):
                got = await walk(bounded.history, root, False)
                want = await walk(full.history, root, True)
                assert [attrs.asdict(v) for v in got] == _expected(full, bounded, want), root
            # What the projector knew synchronously about cold messages agrees.
            assert json.dumps(bounded.feed.export_state(), sort_keys=True) == json.dumps(
                full.feed.export_state(), sort_keys=True
            )
            for user in sorted(room.members):
                for marker in (0, w.seq_of[top[len(top) // 2]], w.seq_of[leaving[0]]):
                    assert b_room.unread.unread(b_room.timeline.seqs, user, marker) == (
                        room.unread.unread(room.timeline.seqs, user, marker)
                    )
            # One message by id: hot, cold, cold and retracted.
            cold = bounded.history.cold
            assert await cold.message(ROOM, staying[-1]) == full.rooms.messages[staying[-1]]
            assert await cold.message(ROOM, top[1]) == full.rooms.messages[top[1]]
            assert await cold.message(ROOM, retracted[0]) is None
            assert await cold.message(ROOM, "0" * 26) is None

            # The snapshot holds the window and the arrays; a restore equals it.
            state = json.loads(json.dumps(bounded.rooms.export_state()))
            assert len(state["messages"]) == len(bounded.rooms.messages)
            again = RoomDirectory(hot_messages=HOT)
            await again.restore_state(state)
            assert json.dumps(again.export_state(), sort_keys=True) == json.dumps(
                state, sort_keys=True
            )


async def test_views_held_stay_under_the_bound_while_walking_history(
    bridge: NatsBridge,
) -> None:
    """Every MessageView alive in the process, counted while a bounded model
    pages a large room's whole history: hot window plus cold page cache."""
    with trio.fail_after(60 + MESSAGES / 200):
        rng = random.Random(13)
        w = Writer(bridge)
        async with following(bridge, HOT, 16) as bounded:
            _, retracted = await _build(w, rng)
            await bounded.projector.wait_for(await w.flush())
            await _erase(bridge, w, retracted)
            rooms = bounded.rooms
            # The window (at most 2 * HOT views), the cache, the page in hand.
            bound = 2 * HOT + 16 * PAGE + PAGE
            most = 0
            cursor: str | None = None
            while True:
                page = await bounded.history.page(ROOM, cursor, None, PAGE)
                gc.collect()
                alive = sum(1 for o in gc.get_objects() if isinstance(o, MessageView))
                most = max(most, alive)
                if not page.has_older:
                    break
                cursor = encode_cursor(page.events[0].seq)
            assert len(rooms.messages) <= 2 * HOT
            assert rooms.cold_pages.statistics()["pages"] <= 16
            assert most <= bound, (most, bound)
            assert len(rooms.rooms[ROOM].timeline.seqs) > 4 * bound


async def test_a_snapshot_of_the_previous_rooms_schema_means_a_replay(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    """Schema 9 kept thread followers in the notification feed; this model (10) refuses it and replays."""
    caplog.set_level(logging.INFO, logger="actors.projector")
    with trio.fail_after(30):
        w = Writer(bridge)
        w.add(RoomCreated("cold", "", "channel", "u1"))
        for i in range(3 * HOT):
            w.add(MessagePosted("u1", f"sealed-{i}", 1))
        await w.flush()
        first = await _started(bridge)
        assert await first.write_snapshot()
        store = NatsSnapshotStore(bridge)
        raw = await store.load()
        assert raw is not None
        snap = decode_snapshot(raw)
        assert snap.schemas["rooms"] == RoomDirectory.snapshot_schema == 10
        await store.save(encode_snapshot(snap.seq, snap.event_id, {"rooms": (9, {})}))
        caplog.clear()
        again = await _started(bridge)
        assert "projector snapshot not used (model schemas" in caplog.text
        assert again.restored_seq == 0 and again.export_states() == first.export_states()
        # The current schema is used, and restores the same state.
        await store.save(raw)
        restored = await _started(bridge)
        assert restored.restored_seq == snap.seq
        assert restored.export_states() == first.export_states()


async def _started(bridge: NatsBridge) -> Projector:
    rooms = RoomDirectory(hot_messages=HOT)
    store = NatsSnapshotStore(bridge)
    projector = Projector(JetStreamEventStore(bridge), [rooms], Hub(), snapshots=store)
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        nursery.cancel_scope.cancel()
    return projector
