"""The cold path (issue #22): pages read back from the stream equal the live model's.

A room is written straight into ``EVT`` (batched publishes, as the startup
benchmark does): top-level posts with attachments, thread replies (some
echoed), reactions added and removed, edits; then, long after, edits,
reactions and thread replies aimed at the oldest messages, and retractions
whose posts and edits are erased from the stream as the messaging service
does. The projector follows all of it live. Every page of the main timeline,
newest to oldest and oldest to newest, and every thread, is then read back
by ``ColdReader`` and must equal the read model's page field for field.

``CHATTO_COLD_MESSAGES`` sets the room's size (default 5,000 top-level
messages, ~40 s at 100,000 on this 2-core machine).
"""

from __future__ import annotations

import asyncio
import os
import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import attrs
import trio

from actors.events import EntityRef, Envelope, Event
from actors.hub import Hub
from actors.ids import new_id
from actors.projector import Projector
from actors.rooms.directory import MessageView, RoomDirectory
from actors.rooms.events import (
    AttachmentUploaded,
    MemberJoined,
    MessageEdited,
    MessagePosted,
    MessageRetracted,
    ReactionChanged,
    RoomCreated,
)
from actors.users.events import UserDeleted
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM
from chatto.codec import encode_envelope, subject_for
from chatto.eventstore import JetStreamEventStore
from chatto.messaging.cold import ColdReader
from chatto.messaging.history import History, encode_cursor

ROOM = "coldroom000000000000000000"
MESSAGES = int(os.environ.get("CHATTO_COLD_MESSAGES", "5000"))
PAGE = 50


class Writer:
    """Envelopes for one room, published in batches; remembers each one's seq."""

    def __init__(self, bridge: NatsBridge) -> None:
        self.bridge = bridge
        self.pending: list[Envelope] = []
        self.seq_of: dict[str, int] = {}
        self.edits_of: dict[str, list[str]] = {}
        self.at = 1_700_000_000_000

    def add(self, event: Event, entity: EntityRef | None = None) -> str:
        self.at += 1
        env = Envelope(new_id(), entity or EntityRef("room", ROOM), self.at, event)
        self.pending.append(env)
        if isinstance(event, MessageEdited):
            self.edits_of.setdefault(event.target_id, []).append(env.id)
        return env.id

    async def flush(self) -> int:
        js = self.bridge.js
        envs, self.pending = self.pending, []
        for i in range(0, len(envs), 1000):
            part = envs[i : i + 1000]

            async def send(part: list[Envelope] = part) -> list[int]:
                acks = await asyncio.gather(
                    *(js.publish(subject_for(e), encode_envelope(e)) for e in part)
                )
                return [int(a.seq) for a in acks]

            for env, seq in zip(part, await self.bridge.call(send), strict=True):
                self.seq_of[env.id] = seq
        return max(self.seq_of.values())


@asynccontextmanager
async def following(bridge: NatsBridge) -> AsyncIterator[tuple[Projector, RoomDirectory]]:
    rooms = RoomDirectory(cold_pages=64, hot_messages=0)  # every view in memory
    projector = Projector(JetStreamEventStore(bridge), [rooms], Hub())
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        yield projector, rooms
        nursery.cancel_scope.cancel()


def _rows(views: list[MessageView]) -> list[dict[str, object]]:
    return [attrs.asdict(v) for v in views]


async def _build(w: Writer, rng: random.Random) -> tuple[list[str], list[str]]:
    """The room's history; returns (top-level ids, retracted ids)."""
    members = [new_id() for _ in range(12)]
    w.add(RoomCreated("cold", "", "channel", members[0]))
    for uid in members:
        w.add(MemberJoined(uid))
    top: list[str] = []
    for i in range(MESSAGES):
        author = rng.choice(members)
        attachments: tuple[str, ...] = ()
        if i % 97 == 0:
            att = new_id()
            w.add(AttachmentUploaded(att, author, "bmFtZQ", "text/plain", 4, 1))
            attachments = (att,)
        top.append(w.add(MessagePosted(author, f"sealed-{i}", 1, attachments=attachments)))
        recent = top[-30:]
        roll = rng.random()
        if roll < 0.1:
            root = rng.choice(recent)
            w.add(MessagePosted(author, "reply", 1, thread_root=root, echo=roll < 0.02))
        elif roll < 0.2:
            w.add(ReactionChanged(rng.choice(recent), author, rng.choice(["tada", "+1"]), True))
        elif roll < 0.23:
            w.add(MessageEdited(rng.choice(recent), author, "ed", 1))
    # Long after: changes aimed at the oldest messages.
    old = top[: max(10, MESSAGES // 10)]
    for _ in range(max(20, MESSAGES // 20)):
        target, who = rng.choice(old), rng.choice(members)
        w.add(
            rng.choice(
                [ReactionChanged(target, who, "eyes", True), MessageEdited(target, who, "late", 1)]
            )
        )
        w.add(MessagePosted(who, "late reply", 1, thread_root=rng.choice(old)))
        w.add(ReactionChanged(target, who, "eyes", False))
    await w.flush()
    retracted = rng.sample(top, max(5, MESSAGES // 200))
    for mid in retracted:
        w.add(MessageRetracted(mid, members[0], members[0]))
    return top, retracted


async def test_cold_pages_equal_hot_pages_both_ways(bridge: NatsBridge) -> None:
    with trio.fail_after(60 + MESSAGES / 1000):
        rng = random.Random(5)
        w = Writer(bridge)
        async with following(bridge) as (projector, rooms):
            top, retracted = await _build(w, rng)
            await projector.wait_for(await w.flush())
            # As MessagingService.retract does: the posts (and edits) are erased.
            for seq in sorted(s for mid in retracted for s in _stored_of(w, mid)):
                await bridge.erase_msg(EVENT_STREAM, seq)
            cold = ColdReader(bridge, rooms)
            history = History(rooms, cold)
            seen = {"edited": 0, "reacted": 0, "retracted": 0, "replies": 0, "attached": 0}
            pages = 0
            for forwards in (False, True):
                cursor: str | None = encode_cursor(0) if forwards else None
                while True:
                    page = (
                        await history.page(ROOM, None, cursor, PAGE)
                        if forwards
                        else await history.page(ROOM, cursor, None, PAGE)
                    )
                    got = await cold.views(ROOM, [v.seq for v in page.events])
                    assert _rows(got) == _rows(page.events)
                    pages += 1
                    for v in page.events:
                        seen["edited"] += bool(v.edited_ms)
                        seen["reacted"] += bool(v.reactions)
                        seen["retracted"] += v.retracted
                        seen["replies"] += bool(v.reply_count)
                        seen["attached"] += bool(v.attachments)
                    more = page.has_newer if forwards else page.has_older
                    if not more:
                        break
                    edge = page.events[-1] if forwards else page.events[0]
                    cursor = encode_cursor(edge.seq)
            assert pages >= 2 * (len(top) // PAGE)
            # The walk read the whole history back; what stays is the bound.
            stats = rooms.cold_pages.statistics()
            assert stats["pages"] <= 64 and stats["evicted"] > 0, stats
            assert stats["views"] <= 64 * PAGE
            assert all(n > 0 for n in seen.values()), seen
            room = rooms.rooms[ROOM]
            for root, line in room.threads.items():
                views = [room.hot[s] for s in line.seqs]
                assert _rows(await cold.views(ROOM, list(line.seqs))) == _rows(views), root


def _stored_of(w: Writer, mid: str) -> list[int]:
    """Seqs of a message's post and edits (what a retraction erases)."""
    return [w.seq_of[mid], *(w.seq_of[e] for e in w.edits_of.get(mid, ()))]


async def test_cold_cache_forgets_changed_and_erased_pages(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        w = Writer(bridge)
        async with following(bridge) as (projector, rooms):
            w.add(RoomCreated("cold", "", "channel", "u1"))
            w.add(MemberJoined("u1"))
            ids = [w.add(MessagePosted("u1", f"sealed-{i}", 1)) for i in range(10)]
            await projector.wait_for(await w.flush())
            cold, seqs = ColdReader(bridge, rooms), [w.seq_of[i] for i in ids]
            cache = rooms.cold_pages
            first = await cold.views(ROOM, seqs)
            assert await cold.views(ROOM, seqs) is first and cache.hits == 1
            # A reaction to a message of the page: the page is forgotten and re-read.
            w.add(ReactionChanged(ids[3], "u1", "tada", True))
            await projector.wait_for(await w.flush())
            assert cache.statistics()["pages"] == 0
            again = await cold.views(ROOM, seqs)
            assert again[3].reactions == {"tada": ["u1"]}
            # A retraction: gone from the cache in the batch that records it.
            w.add(MessageRetracted(ids[5], "u1", "u1"))
            await projector.wait_for(await w.flush())
            assert cache.statistics()["pages"] == 0
            await bridge.erase_msg(EVENT_STREAM, w.seq_of[ids[5]])
            after = await cold.views(ROOM, seqs)
            assert after[5].retracted and after[5].body == "" and after[5].reactions == {}
            assert all(v.body != "sealed-5" for v in after)
            # An account deletion (crypto-shredding) clears every cached page.
            assert cache.statistics()["pages"] == 1
            w.add(UserDeleted(), EntityRef("user", "u2"))
            await projector.wait_for(await w.flush())
            assert cache.statistics()["pages"] == 0 and cache.forgotten >= 3


async def test_other_rooms_events_are_never_folded(bridge: NatsBridge) -> None:
    """A sequence of another room is ignored even if asked for."""
    with trio.fail_after(30):
        w = Writer(bridge)
        async with following(bridge) as (projector, rooms):
            w.add(RoomCreated("cold", "", "channel", "u1"))
            mine = w.add(MessagePosted("u1", "mine", 1))
            other = w.add(MessagePosted("u1", "theirs", 1), EntityRef("room", "elsewhere"))
            await projector.wait_for(await w.flush())
            got = await ColdReader(bridge, rooms).views(ROOM, [w.seq_of[mine], w.seq_of[other]])
            assert [v.id for v in got] == [mine] and got[0].room_id == ROOM
