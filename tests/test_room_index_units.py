"""The compact per-room columns and id index (issue #22) on their own (no I/O)."""

from __future__ import annotations

import random

from actors.events import EntityRef, Envelope, Event, Recorded
from actors.ids import new_id
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import MemberJoined, MessagePosted, MessageRetracted, RoomCreated
from actors.rooms.index import IdIndex, Posts, id_hash

ROOM = "indexroom0000000000000000"


class Feed:
    """Events of one room applied to a directory in stream order."""

    def __init__(self, rooms: RoomDirectory) -> None:
        self.rooms, self.seq = rooms, 0

    def add(self, event: Event, event_id: str = "") -> str:
        self.seq += 1
        env = Envelope(event_id or new_id(), EntityRef("room", ROOM), 1_700_000_000_000, event)
        self.rooms.apply(Recorded(self.seq, env))
        return env.id


def test_id_index_finds_every_id_after_growing_and_nothing_else() -> None:
    index = IdIndex()
    ids = [new_id() for _ in range(5000)]
    for i, mid in enumerate(ids):
        index.add(mid, i)
    assert all(index.find(mid) == i for i, mid in enumerate(ids))
    assert index.find(new_id()) == -1 and len(index) == 5000
    assert index.slots() >= 5000 / 0.6 and index.tables[0].keys.itemsize == 8
    assert len(index.tables) > 5  # grown by new tables, never rehashed
    back = IdIndex.restore(index.export())
    assert all(back.find(mid) == i for i, mid in enumerate(ids)) and len(back) == 5000
    assert id_hash("x") == id_hash("x") != 0


def test_posts_round_trip_through_their_export() -> None:
    posts = Posts()
    ids = [new_id() for _ in range(300)]
    for i, mid in enumerate(ids):
        posts.add(mid, 10 + 2 * i, i % 7, ids[0] if i % 5 == 4 else "", -1, i % 10 == 9)
    posts.retract(3)
    back = Posts.restore(posts.export())
    for name in ("seqs", "authors", "roots", "replied", "flags"):
        assert getattr(back, name) == getattr(posts, name), name
    assert all(back.find(mid) == i for i, mid in enumerate(ids))
    assert back.root_ids == {10: ids[0]} and back.at_seq(12) == 1 and back.at_seq(13) == -1


def test_facts_agree_with_the_views_for_every_message() -> None:
    rng = random.Random(3)
    rooms = RoomDirectory(cold_pages=0, hot_messages=0)
    feed = Feed(rooms)
    users = [new_id() for _ in range(5)]
    feed.add(RoomCreated("idx", "", "channel", users[0]))
    for uid in users:
        feed.add(MemberJoined(uid))
    top: list[str] = []
    for i in range(400):
        author = rng.choice(users)
        if top and rng.random() < 0.3:
            root = rng.choice(top[-20:])
            echo = rng.random() < 0.2
            replied = rng.choice(top) if rng.random() < 0.5 else ""
            feed.add(MessagePosted(author, "r", 1, replied, root, echo))
        else:
            top.append(feed.add(MessagePosted(author, f"m{i}", 1)))
    for mid in rng.sample(top, 10):
        feed.add(MessageRetracted(mid, users[0], users[0]))
    assert len(rooms.rooms[ROOM].posts) == len(rooms.messages)
    for view in rooms.messages.values():
        facts = rooms.facts(ROOM, view.id)
        assert facts is not None
        replied = rooms.messages.get(view.in_reply_to)
        assert (
            facts.seq,
            facts.author_id,
            facts.thread_root,
            facts.echo,
            facts.retracted,
            facts.replied_author,
        ) == (
            view.seq,
            view.author_id,
            view.thread_root,
            view.echo,
            view.retracted,
            replied.author_id if replied is not None else "",
        )
    assert rooms.facts(ROOM, new_id()) is None and rooms.facts("elsewhere", top[0]) is None
    assert rooms.rooms_touched_by(users[1]) == {ROOM}


def test_least_recently_used_rooms_give_up_their_views() -> None:
    rooms = RoomDirectory(cold_pages=0, hot_messages=10, hot_rooms=2)
    seq = 0

    def add(room_id: str, event: Event) -> str:
        nonlocal seq
        seq += 1
        env = Envelope(new_id(), EntityRef("room", room_id), 1_700_000_000_000, event)
        rooms.apply(Recorded(seq, env))
        return env.id

    posted: dict[str, list[str]] = {}
    for room_id in ("a", "b", "c"):
        add(room_id, RoomCreated(room_id, "", "channel", "u1"))
        posted[room_id] = [add(room_id, MessagePosted("u1", f"{i}", 1)) for i in range(25)]
    # At most 2 * hot_messages views per room, in at most hot_rooms rooms.
    assert {m.room_id for m in rooms.messages.values()} == {"b", "c"}
    assert all(len(rooms.rooms[r].hot) <= 20 for r in "bc") and not rooms.rooms["a"].hot
    tomb = posted["b"][-1]
    add("b", MessageRetracted(tomb, "u1", "u1"))
    assert rooms.messages[tomb].retracted and rooms.rooms["b"].tombstones
    add("a", MessagePosted("u1", "back", 1))  # a is used again: b is the oldest now
    assert {m.room_id for m in rooms.messages.values()} == {"a", "c"}
    b = rooms.rooms["b"]
    # The tombstone left with b's views: absent, as after a replay.
    facts = rooms.facts("b", tomb)
    assert not b.tombstones and facts is not None and facts.retracted
    assert b.timeline.seqs[-1] < seq - 1 and len(b.timeline.seqs) == 24
    assert b.unread.unread(b.timeline.seqs, "u2", 0) == 24
    stats = rooms.cache_statistics()
    assert stats["hot_rooms"] == 2 and stats["hot_rooms_evicted"] == 2
    assert all(rooms.facts(r, i) is not None for r in "abc" for i in posted[r])


async def test_a_restore_keeps_the_order_of_use_and_applies_smaller_bounds() -> None:
    rooms = RoomDirectory(cold_pages=0, hot_messages=10, hot_rooms=3)
    seq = 0
    for room_id in ("c", "a", "b"):
        seq += 1
        env = Envelope(
            new_id(), EntityRef("room", room_id), 0, RoomCreated(room_id, "", "channel", "u")
        )
        rooms.apply(Recorded(seq, env))
    for room_id in ("c", "a", "b", "c"):
        for i in range(15):
            seq += 1
            env = Envelope(new_id(), EntityRef("room", room_id), 0, MessagePosted("u", f"{i}", 1))
            rooms.apply(Recorded(seq, env))
    state = rooms.export_state()
    assert state["hot_rooms"] == ["a", "b", "c"]
    same = RoomDirectory(cold_pages=0, hot_messages=10, hot_rooms=3)
    await same.restore_state(state)
    assert same.export_state() == state
    smaller = RoomDirectory(cold_pages=0, hot_messages=5, hot_rooms=2)
    await smaller.restore_state(state)
    assert list(smaller.hot.rooms) == ["b", "c"] and not smaller.rooms["a"].hot
    assert all(len(smaller.rooms[r].hot) == 5 for r in "bc")
    assert len(smaller.messages) == 10
