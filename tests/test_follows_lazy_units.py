"""Thread follows with room indexes loaded on demand (issue #22), no I/O.

Who follows a thread lives in the room's history index; a user's follows
are one array of thread keys. An explicit follow or unfollow of a thread in
a room whose index is not loaded must load it (the directory's ``prepare``)
and end exactly as with every index resident: the same followers, the same
follows, the same notifications.
"""

from __future__ import annotations

from actors.events import EntityRef, Envelope, Event, Recorded
from actors.ids import new_id
from actors.notifications.events import ThreadFollowed, ThreadUnfollowed
from actors.notifications.feed import NotificationFeed
from actors.notifications.follows import Follows
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import MemberJoined, MessagePosted, RoomCreated
from actors.rooms.indexblob import MAGIC
from tests.test_room_index_lazy_units import Objects

A, B = "roomA", "roomB"
U1, U2, U3 = new_id(), new_id(), new_id()


class Pair:
    """(lazy directory + feed, fully resident directory + feed), fed alike."""

    def __init__(self) -> None:
        self.objects = Objects()
        self.lazy = RoomDirectory(0, 5, 2, 1, self.objects)
        self.full = RoomDirectory(0, 5, 2)
        self.feeds = (NotificationFeed(self.lazy), NotificationFeed(self.full))
        self.seq = 0

    async def add(self, kind: str, entity: str, event: Event) -> Recorded:
        self.seq += 1
        rec = Recorded(self.seq, Envelope(new_id(), EntityRef(kind, entity), 0, event))
        for rooms, feed in zip((self.lazy, self.full), self.feeds, strict=True):
            await rooms.prepare([rec])
            rooms.apply(rec)
            feed.apply(rec)
        return rec

    async def evict(self, room_id: str) -> None:
        """Store the changed indexes, then read the other room: ``room_id`` leaves."""
        await self.lazy.persist_objects(self.seq)
        await self.lazy.snapshot_saved()
        await self.lazy.prepare([])  # the projector's next batch: nothing pinned
        await self.lazy.ensure(B if room_id == A else A)
        assert self.lazy.rooms[room_id].resident is None


async def test_follows_of_unloaded_rooms_end_as_with_every_index_resident() -> None:
    pair = Pair()
    lazy_feed, full_feed = pair.feeds
    for room_id in (A, B):
        await pair.add("room", room_id, RoomCreated(room_id, "", "channel", U1))
        for user in (U1, U2, U3):
            await pair.add("room", room_id, MemberJoined(user))
    root = await pair.add("room", A, MessagePosted(U1, "sealed", 1))
    root_id = root.envelope.id
    await pair.add("room", A, MessagePosted(U2, "sealed", 1, thread_root=root_id))
    assert lazy_feed.follows_thread(U1, A, root.seq) and lazy_feed.follows_thread(U2, A, root.seq)
    assert not lazy_feed.follows_thread(U3, A, root.seq)

    await pair.evict(A)
    await pair.add("notify", U3, ThreadFollowed(A, root_id))
    assert lazy_feed.follows_thread(U3, A, root.seq)
    await pair.evict(A)
    reply = await pair.add("room", A, MessagePosted(U1, "sealed", 1, thread_root=root_id))
    kinds = [(n.message_id, n.kind) for n in lazy_feed.notices(U3)]
    assert kinds == [(reply.envelope.id, "THREAD_REPLY")]

    await pair.evict(A)
    await pair.add("notify", U3, ThreadUnfollowed(A, root_id))
    await pair.evict(A)
    await pair.add("room", A, MessagePosted(U2, "sealed", 1, thread_root=root_id))
    assert [n.message_id for n in lazy_feed.notices(U3)] == [reply.envelope.id]
    assert not lazy_feed.follows_thread(U3, A, root.seq)

    for rooms in (pair.lazy, pair.full):
        await rooms.ensure(A)
        assert sorted(rooms.thread_followers(A, root_id)) == sorted([U1, U2])
    assert lazy_feed.export_state() == full_feed.export_state()
    await pair.lazy.ensure(A, B)
    assert pair.lazy.export_state(inline=True) == pair.full.export_state(inline=True)
    # Stored by number: no user id in an index object.
    for name in pair.objects.indexes():
        data = pair.objects.data[name]
        assert data.startswith(MAGIC)
        assert not any(u.encode() in data for u in (U1, U2, U3))


def test_follow_keys_round_trip_and_stay_sorted() -> None:
    follows = Follows()
    follows.add("u", "r2", 9)
    follows.add("u", "r1", 7)
    follows.add("u", "r2", 3)
    follows.add("u", "r2", 3)  # once
    assert follows.of("u") == [("r2", 3), ("r2", 9), ("r1", 7)]  # by room number, then seq
    follows.remove("u", "r2", 9)
    follows.remove("u", "nowhere", 9)  # an unknown room: nothing
    again = Follows.restore(follows.export())
    assert again.of("u") == [("r2", 3), ("r1", 7)] and again.has("u", "r1", 7)
    assert not again.has("u", "r2", 9) and not again.has("v", "r1", 7)
    again.forget("u")
    assert again.of("u") == []
