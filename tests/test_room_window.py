"""The room actor's bounded message window (issue #22), against a real nats-server.

A ``RoomActor`` with a small hot window must decide every command on an old
message exactly as one that holds every message: reactions, pins, thread
replies, edits, retractions (whose reply names every stored event that held
the body) and the purge of a deleted member, also after a restart from its
checkpoint and against a second writer. Its memory and checkpoint hold at
most the window's ``Msg``s, whatever the room's length.
"""

from __future__ import annotations

import gc
import json
from typing import Any

import attrs
import trio

from actors.rooms.actor import RoomActor
from actors.rooms.commands import (
    BodyKey,
    CreateRoom,
    EditMessage,
    Join,
    PinMessage,
    PostMessage,
    PurgeMember,
    React,
    Removal,
    RetractMessage,
    TakeUnerased,
)
from actors.rooms.events import MessageEdited, MessagePosted, ReactionChanged
from actors.rooms.idindex import IdIndex
from actors.rooms.rules import Msg
from actors.snapshot import decode_snapshot
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM
from chatto.errors import ChattoError
from chatto.eventstore import JetStreamEventStore
from chatto.snapshot_store import NatsSnapshotStore

KEY = BodyKey(b"k" * 32, 1)
ROOM = "win"
SMALL = 20
BIG = 10**6
USERS = ("u0", "u1", "u2", "u3")


def room_actor(bridge: NatsBridge, hot: int, checkpoints: bool = False) -> RoomActor:
    store = NatsSnapshotStore(bridge, f"actor.room.{ROOM}") if checkpoints else None
    actor = RoomActor(ROOM, JetStreamEventStore(bridge), checkpoints=store, hot_messages=hot)
    actor.checkpoint_every = 50
    return actor


async def commit(bridge: NatsBridge, actor: RoomActor, cmd: object) -> Any:
    """``handle``, erasing what a retraction or purge names (as the services do)."""
    done = await actor.handle(cmd)
    if isinstance(done.value, Removal):
        for seq in done.value.seqs:
            await bridge.erase_msg(EVENT_STREAM, seq)
    return done.value


async def build(bridge: NatsBridge, actor: RoomActor, n: int) -> list[str]:
    """A room of ``n`` posts by u0..u2 with edits, reactions, threads and retractions."""
    await actor.handle(CreateRoom("w", "", "channel", "u0"))
    for user in USERS:
        await actor.handle(Join(user))
    ids: list[str] = []
    for i in range(n):
        author = USERS[i % 3]
        root = ids[2] if i == 3 else ""
        ids.append(
            await commit(
                bridge,
                actor,
                PostMessage(author, f"m{i}", KEY, thread_root=root, client_key=f"k{i}"),
            )
        )
        if i % 10 == 0:
            await commit(bridge, actor, EditMessage(author, ids[i], f"e{i}", KEY))
        if i % 7 == 0:
            await commit(bridge, actor, React("u3", ids[i], "thumbsup", True))
        if i % 13 == 5:
            await commit(bridge, actor, RetractMessage(author, ids[i]))
    return ids


def shape(value: Any) -> Any:
    """A decision's events and reply without what is random (new ids, sealed bodies)."""
    if isinstance(value, ChattoError):
        return type(value).__name__
    events = []
    for ev in value.events:
        fields = attrs.asdict(ev)
        fields.pop("body", None)
        events.append((type(ev).__name__, fields))
    return events, "<new id>" if value.event_ids else value.reply


async def outcome(actor: RoomActor, cmd: object) -> Any:
    """What ``actor`` decides for ``cmd`` now, without committing it."""
    await actor.catch_up()
    await actor.prepare(cmd)
    try:
        return shape(actor.decide(cmd))
    except ChattoError as exc:
        return shape(exc)


async def msg_of(actor: RoomActor, mid: str) -> Msg | None:
    """The actor's ``Msg`` of ``mid``, read back if cold (None: retracted or unknown)."""
    await actor.window.load(actor.store, actor.entity, mid)
    msg = actor.messages.get(mid)
    return None if msg is None or msg.retracted else msg


async def same_messages(small: RoomActor, big: RoomActor, ids: list[str]) -> None:
    await small.catch_up()
    await big.catch_up()
    for mid in ids:
        assert await msg_of(small, mid) == await msg_of(big, mid), mid
    assert len(small.messages) <= SMALL


def test_id_index_finds_every_id_after_growing_and_restoring() -> None:
    index = IdIndex()
    ids = [f"id{i}" for i in range(5000)]
    for seq, mid in enumerate(ids, 1):
        index.add(mid, seq)
    again = IdIndex.restore(json.loads(json.dumps(index.export())))
    for seq, mid in enumerate(ids, 1):
        assert index.get(mid) == again.get(mid) == seq
    assert index.get("nope") == again.get("nope") == 0
    assert len(again.slots) >= len(ids) * 4 // 3


async def test_cold_messages_decide_like_hot_ones(bridge: NatsBridge) -> None:
    with trio.fail_after(120):
        small = room_actor(bridge, SMALL)
        await small.start()
        ids = await build(bridge, small, 300)
        reply_in_thread = ids[3]
        big = room_actor(bridge, BIG)
        await big.start()
        assert len(small.messages) == SMALL and len(big.messages) == 300
        commands: list[object] = [
            React("u3", ids[7], "thumbsup", True),  # already there: no-op
            React("u3", ids[7], "thumbsup", False),
            React("u1", ids[8], "tada", True),
            React("u1", ids[18], "tada", True),  # retracted
            PinMessage("u0", ids[9]),
            PinMessage("u0", ids[5]),  # retracted
            PinMessage("u0", ids[9], pin=False),
            PostMessage("u1", "late reply", KEY, thread_root=ids[11]),
            PostMessage("u1", "nested", KEY, thread_root=reply_in_thread),
            PostMessage("u2", "answer", KEY, in_reply_to=ids[14]),
            PostMessage(USERS[30 % 3], "retry", KEY, client_key="k30"),
            EditMessage(USERS[12 % 3], ids[12], "edited late", KEY),
            EditMessage("u3", ids[12], "not mine", KEY),
            RetractMessage("u1", ids[20], as_moderator=True),  # edited: post + edit
            RetractMessage("u2", ids[21]),  # not the author
            RetractMessage(USERS[32 % 3], ids[32]),
            React("u3", ids[20], "thumbsup", True),  # retracted just now
        ]
        for cmd in commands:
            expected = await outcome(big, cmd)
            assert await outcome(small, cmd) == expected, cmd
            if isinstance(expected, tuple) and expected[0]:
                await commit(bridge, small, cmd)
        assert small.window.loads > 0
        await same_messages(small, big, ids)


async def test_a_cold_retraction_names_and_erases_its_post_and_edits(bridge: NatsBridge) -> None:
    with trio.fail_after(120):
        small = room_actor(bridge, SMALL)
        await small.start()
        ids = await build(bridge, small, 200)
        store = JetStreamEventStore(bridge)
        target = ids[40]  # edited while hot (i % 10 == 0)
        await commit(bridge, small, EditMessage("u1", target, "again", KEY))  # and once more cold
        done = await small.handle(RetractMessage("u1", target))
        seqs = done.value.seqs
        stored = await store.get(small.entity, seqs)
        kinds = [(type(r.envelope.event), r.envelope.id) for r in stored if r is not None]
        assert kinds[0] == (MessagePosted, target) and len(kinds) == len(seqs) == 3
        for rec in stored[1:]:
            assert rec is not None and isinstance(rec.envelope.event, MessageEdited)
            assert rec.envelope.event.target_id == target
        for seq in seqs:
            await bridge.erase_msg(EVENT_STREAM, seq)
        assert await store.get(small.entity, seqs) == [None] * len(seqs)
        assert (await small.handle(TakeUnerased())).value == ()


async def test_an_unerased_cold_retraction_is_found_on_replay(bridge: NatsBridge) -> None:
    """A crash between a retraction and its erase: the next load names what to erase."""
    with trio.fail_after(120):
        writer = room_actor(bridge, SMALL)
        await writer.start()
        ids = await build(bridge, writer, 200)
        cp = room_actor(bridge, SMALL, checkpoints=True)
        await cp.start()  # its checkpoint holds ids[40] cold
        assert ids[40] not in cp.messages
        done = await writer.handle(RetractMessage("u1", ids[40]))  # not erased: a crash
        assert len(done.value.seqs) == 2  # the post and its edit
        for replayed in (room_actor(bridge, SMALL), room_actor(bridge, SMALL, checkpoints=True)):
            await replayed.start()
            assert (await replayed.handle(TakeUnerased())).value == done.value.seqs
        assert cp.unsaved == 0


async def test_purge_of_a_deleted_member_reaches_every_old_message(bridge: NatsBridge) -> None:
    with trio.fail_after(120):
        small = room_actor(bridge, SMALL)
        await small.start()
        ids = await build(bridge, small, 300)
        big = room_actor(bridge, BIG)
        await big.start()
        purge = PurgeMember("u2")
        expected = await outcome(big, purge)
        assert await outcome(small, purge) == expected
        events, removal = expected
        live = [m for i, m in enumerate(ids) if i % 3 == 2 and i % 13 != 5]
        assert [f["target_id"] for name, f in events if name == "MessageRetracted"] == live
        edited = [i for i in range(2, 300, 3) if i % 30 == 20 and i % 13 != 5]
        assert len(removal.seqs) == len(live) + len(edited)
        await commit(bridge, small, purge)
        left = await JetStreamEventStore(bridge).load(small.entity)
        authored = [
            r
            for r in left
            if isinstance(r.envelope.event, MessagePosted | MessageEdited)
            and r.envelope.event.author_id == "u2"
        ]
        assert authored == []
        assert await outcome(small, purge) == ([], Removal((), ()))  # done: nothing more


async def test_memory_and_checkpoint_hold_the_window_only(bridge: NatsBridge) -> None:
    with trio.fail_after(180):
        writer = room_actor(bridge, SMALL)
        await writer.start()
        ids = await build(bridge, writer, 100)
        store = NatsSnapshotStore(bridge, f"actor.room.{ROOM}")
        sizes = []
        for more in (0, 900):
            for i in range(more):
                await writer.handle(PostMessage(USERS[i % 3], f"x{i}", KEY))
            gc.collect()
            before = sum(isinstance(o, Msg) for o in gc.get_objects())
            reader = room_actor(bridge, SMALL, checkpoints=True)
            await reader.start()  # full replay, then writes its checkpoint
            reader.unsaved = reader.checkpoint_every
            assert await reader.save_checkpoint()
            gc.collect()
            held = sum(isinstance(o, Msg) for o in gc.get_objects()) - before
            assert held <= SMALL + 2
            data = await store.load()
            assert data is not None
            state = decode_snapshot(data).models["room"]
            assert len(state["messages"]["hot"]) <= SMALL
            sizes.append(len(data))
            del reader
        # The compact index grows by a few bytes per message, nothing more.
        assert sizes[1] - sizes[0] < 900 * 40
        again = room_actor(bridge, SMALL, checkpoints=True)
        again.checkpoint_every = 10**6
        await again.start()
        # From the checkpoint; the posts retracted in ``build`` were erased.
        assert again.unsaved == 0 and len(again.window) == 1000 - 8
        big = room_actor(bridge, BIG)
        await big.start()
        for cmd in (
            React("u0", ids[1], "tada", True),
            PinMessage("u0", ids[2]),
            PostMessage("u1", "late", KEY, thread_root=ids[4]),
            RetractMessage("u0", ids[30]),
            PurgeMember("u1"),
        ):
            expected = await outcome(big, cmd)
            assert await outcome(again, cmd) == expected, cmd
            await commit(bridge, again, cmd)
        await same_messages(again, big, ids)


async def test_two_writers_with_cold_targets_resolve_conflicts(bridge: NatsBridge) -> None:
    with trio.fail_after(120):
        a = room_actor(bridge, SMALL)
        await a.start()
        ids = await build(bridge, a, 120)
        b, c, e, f = (room_actor(bridge, SMALL) for _ in range(4))
        for stale in (b, c, e, f):
            await stale.start()
        # b, c, e and f are stale from here on: a reacts to and retracts old
        # messages, and u2 posts once more.
        await commit(bridge, a, PostMessage("u2", "one more", KEY))
        await commit(bridge, a, React("u1", ids[10], "tada", True))
        kept = await a.handle(RetractMessage("u0", ids[9]))  # post still stored
        await commit(bridge, a, RetractMessage("u0", ids[12]))  # post erased
        for stale, target in ((b, ids[9]), (c, ids[12])):
            try:
                await stale.handle(React("u1", target, "tada", True))
            except ChattoError as exc:
                assert exc.code == "NOT_FOUND"
            else:
                raise AssertionError("a reaction to a retracted message was accepted")
        assert b.conflicts == 1  # read the post back, lost the append, caught up
        assert (await e.handle(React("u1", ids[10], "tada", True))).recorded == ()
        assert e.conflicts == 1  # the same reaction is there already
        for seq in kept.value.seqs:
            await bridge.erase_msg(EVENT_STREAM, seq)
        await commit(bridge, f, PurgeMember("u2"))  # its plan lacks the newest post
        assert f.conflicts == 1
        events = await JetStreamEventStore(bridge).load(a.entity)
        tadas = [r for r in events if isinstance(r.envelope.event, ReactionChanged)]
        assert [r.envelope.event.target_id for r in tadas].count(ids[10]) == 1
        posts = [r.envelope.event for r in events if isinstance(r.envelope.event, MessagePosted)]
        assert [p for p in posts if p.author_id == "u2"] == [] and posts
        for stale in (b, c, e, f):
            await same_messages(stale, a, ids)  # both caught up: the same messages
            assert stale.last_seq == a.last_seq
