"""Room actor checkpoints: a long room loads from its checkpoint plus the tail.

Against a real nats-server: the state a checkpoint restores, plus the events
after it, must equal a full replay of the room, field for field; anything
wrong with a checkpoint (corrupt, another room's, an anchor erased by a
retraction) is a full replay, never a wrong state; a checkpoint holds no
sealed data.
"""

from __future__ import annotations

import zlib
from typing import Any

import pytest
import trio

from actors.entity import Committed
from actors.rooms.actor import RoomActor
from actors.rooms.commands import (
    Ban,
    BodyKey,
    CreateRoom,
    EditMessage,
    Join,
    Leave,
    PinMessage,
    PostMessage,
    PurgeMember,
    React,
    RegisterAttachment,
    RetractMessage,
    Unban,
)
from actors.runtime import RuntimeSettings, open_actor_system
from chatto.bus.bridge import NatsBridge
from chatto.eventstore import JetStreamEventStore
from chatto.snapshot_store import NatsSnapshotStore

KEY = BodyKey(b"k" * 32, 1)
ROOM = "cp"


def actor(bridge: NatsBridge, every: int = 10, room: str = ROOM) -> RoomActor:
    a = RoomActor(room, JetStreamEventStore(bridge), checkpoints=store_of(bridge, room))
    a.checkpoint_every = every
    return a


def store_of(bridge: NatsBridge, room: str = ROOM) -> NatsSnapshotStore:
    return NatsSnapshotStore(bridge, f"actor.room.{room}")


async def full_replay(bridge: NatsBridge, room: str = ROOM) -> dict[str, Any]:
    plain = RoomActor(room, JetStreamEventStore(bridge))
    await plain.start()
    return plain.export_state()


async def rich_history(bridge: NatsBridge, rounds: int) -> list[str]:
    """Every kind of room event, through the real actor; the posted ids."""
    posted: list[str] = []
    async with open_actor_system(RuntimeSettings()) as system:
        system.register("room", lambda rid: RoomActor(rid, JetStreamEventStore(bridge)))

        async def ask(cmd: object) -> Any:
            done: Committed = await system.ask("room", ROOM, cmd)
            return done.value

        if not posted and rounds:
            await ask(CreateRoom("cp", "topic", "channel", "u0"))
            for u in ("u0", "u1", "u2", "u3"):
                await ask(Join(u))
        for i in range(rounds):
            author = f"u{i % 3}"
            await ask(RegisterAttachment(author, f"att{i}", "name", "text/plain", 3, 1))
            mid = await ask(
                PostMessage(author, f"body {i}", KEY, attachments=(f"att{i}",), client_key=f"k{i}")
            )
            posted.append(mid)
            await ask(EditMessage(author, mid, f"edited {i}", KEY))
            await ask(React("u3", mid, "thumbsup", True))
            if i % 2:
                await ask(React("u3", mid, "thumbsup", False))
                await ask(PostMessage("u1", "reply", KEY, thread_root=posted[0]))
            if i % 4 == 0 or i == 9:
                await ask(PinMessage("u0", mid))  # 8 is retracted below
            if i % 3 == 2:
                await ask(RetractMessage(author, mid))
        if rounds:
            await ask(PinMessage("u0", posted[0], pin=False))
            await ask(Ban("u0", "u2", "spam"))
            await ask(Unban("u0", "u2"))
            await ask(Leave("u3"))
    return posted


async def test_checkpoint_plus_tail_equals_a_full_replay(bridge: NatsBridge) -> None:
    with trio.fail_after(60):
        posted = await rich_history(bridge, 12)
        first = actor(bridge)
        await first.start()  # a long load: writes the checkpoint
        assert await store_of(bridge).load() is not None and first.unsaved == 0
        # More history after the checkpoint (the tail), then a fresh load.
        async with open_actor_system(RuntimeSettings()) as system:
            system.register("room", lambda rid: actor(bridge, every=10_000))
            await system.ask("room", ROOM, PostMessage("u0", "after", KEY, client_key="late"))
            await system.ask("room", ROOM, PurgeMember("u1"))
        store = JetStreamEventStore(bridge)
        tail = await store.load(first.entity, first.last_seq)
        everything = await store.load(first.entity)
        again = actor(bridge, every=10_000)
        await again.start()
        assert 0 < again.unsaved == len(tail) < len(everything)  # only the tail replayed
        plain = RoomActor(ROOM, store)
        await plain.start()
        assert again.export_state() == plain.export_state()
        assert (again.last_seq, again.last_event_id) == (plain.last_seq, plain.last_event_id)
        assert again.client_keys and again.messages and again.attachments
        assert again.pins == [posted[9]]  # 0 unpinned, 4 purged (u1's), 8 retracted


async def test_passivation_writes_the_checkpoint(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        async with open_actor_system(RuntimeSettings(idle_seconds=0.2)) as system:
            system.register("room", lambda rid: actor(bridge, every=5))
            await system.ask("room", ROOM, CreateRoom("cp", "", "channel", "u0"))
            await system.ask("room", ROOM, Join("u0"))
            for i in range(6):
                await system.ask("room", ROOM, PostMessage("u0", f"m{i}", KEY))
            assert await store_of(bridge).load() is None  # started empty: nothing yet
            while system.is_live("room", ROOM):
                await trio.sleep(0.05)
            while await store_of(bridge).load() is None:  # written as it retires
                await trio.sleep(0.05)
        again = actor(bridge)
        await again.start()
        assert again.unsaved == 0 and again.export_state() == await full_replay(bridge)


@pytest.mark.parametrize("damage", ["corrupt", "other_room", "anchor_erased"])
async def test_a_bad_checkpoint_means_a_full_replay(
    bridge: NatsBridge, damage: str, caplog: pytest.LogCaptureFixture
) -> None:
    with trio.fail_after(60):
        posted = await rich_history(bridge, 4)
        first = actor(bridge, every=1)
        await first.start()
        if damage == "corrupt":
            data = await store_of(bridge).load()
            assert data is not None
            await store_of(bridge).save(data[:-20] + b"x" * 20)
        elif damage == "other_room":
            other = actor(bridge, every=1, room="elsewhere")
            await other.start()  # an empty room: nothing to checkpoint
            data = await store_of(bridge).load()
            assert data is not None
            await store_of(bridge, "elsewhere").save(data)  # cp's state under another name
            caplog.clear()
            moved = actor(bridge, every=1, room="elsewhere")
            await moved.start()
            assert "not used" in caplog.text and moved.export_state() == await full_replay(
                bridge, "elsewhere"
            )
            return
        else:
            # Retracting the newest message erases its events: the anchor is gone.
            async with open_actor_system(RuntimeSettings()) as system:
                system.register("room", lambda rid: RoomActor(rid, JetStreamEventStore(bridge)))
                last = await system.ask("room", ROOM, PostMessage("u0", "newest", KEY))
                fresh = actor(bridge, every=1)
                await fresh.start()  # checkpoint anchored on "newest"
                removal = await system.ask("room", ROOM, RetractMessage("u0", last.value))
                for seq in removal.value.seqs:
                    await bridge.erase_msg("EVT", int(seq))
        caplog.clear()
        again = actor(bridge, every=10_000)
        await again.start()
        assert "not used" in caplog.text, caplog.text
        assert again.export_state() == await full_replay(bridge)
        assert posted


async def test_a_checkpoint_holds_no_sealed_data(bridge: NatsBridge) -> None:
    with trio.fail_after(60):
        await rich_history(bridge, 3)
        first = actor(bridge, every=1)
        await first.start()
        data = await store_of(bridge).load()
        assert data is not None
        body = zlib.decompress(data[data.index(b"\n", 16) + 1 :])
        stored = await JetStreamEventStore(bridge).load(first.entity)
        sealed = [r.envelope.event.body for r in stored if hasattr(r.envelope.event, "body")]
        assert sealed and not any(s.encode() in body for s in sealed)
        assert b"body 0" not in body and b"edited" not in body
