"""The actor runtime against a real nats-server: ask/reply, passivation,
crash isolation, back-pressure and optimistic concurrency."""

from __future__ import annotations

from typing import Any

import attrs
import pytest
import trio

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, ProbeRecorded, Recorded
from actors.runtime import ActorCrashedError, ActorSystem, RuntimeSettings, open_actor_system
from actors.server import RecordProbe, ServerActor, SetServerProfile
from chatto.bus.bridge import NatsBridge
from chatto.errors import BusyError, DeadlineError, InvalidInputError
from chatto.eventstore import JetStreamEventStore


@attrs.frozen
class Add:
    amount: int


@attrs.frozen
class Boom:
    pass


@attrs.frozen
class Spend:
    amount: int


@attrs.frozen
class Total:
    stale_ok: bool = False


@attrs.frozen
class Sleep:
    seconds: float


class Counter(EntityActor):
    """A test entity: a counter whose increments are ProbeRecorded events."""

    loads = 0

    def __init__(self, ident: str, store: JetStreamEventStore) -> None:
        super().__init__(EntityRef("counter", ident), store, max_retries=20)
        self.total = 0
        self.seen: list[int] = []

    async def start(self) -> None:
        Counter.loads += 1
        await super().start()

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        assert isinstance(event, ProbeRecorded)
        self.total += event.value
        self.seen.append(event.value)

    def decide(self, command: Any) -> Decision:
        if isinstance(command, Add):
            return Decision([ProbeRecorded(command.amount)], reply=self.total + command.amount)
        if isinstance(command, Boom):
            raise RuntimeError("boom")
        if isinstance(command, Spend):
            if command.amount > self.total:
                raise InvalidInputError("not enough")
            return Decision([ProbeRecorded(-command.amount)], reply=self.total - command.amount)
        if isinstance(command, Total):
            return Decision((), reply=self.total, stale_ok=command.stale_ok)
        raise InvalidInputError("unknown command")

    async def handle(self, command: Any) -> Any:
        if isinstance(command, Sleep):
            await trio.sleep(command.seconds)
            return "slept"
        return await super().handle(command)


def system_with_counter(system: ActorSystem, store: JetStreamEventStore) -> ActorSystem:
    system.register("counter", lambda ident: Counter(ident, store))
    return system


async def test_ask_reply_and_state_persisted(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        async with open_actor_system(RuntimeSettings()) as system:
            system_with_counter(system, store)
            assert (await system.ask("counter", "a", Add(2))).value == 2
            assert (await system.ask("counter", "a", Add(3))).value == 5
            assert (await system.ask("counter", "b", Add(7))).value == 7
            with pytest.raises(InvalidInputError):
                await system.ask("counter", "a", "nonsense")
        recs = await store.load(EntityRef("counter", "a"))
        assert [r.envelope.event.value for r in recs] == [2, 3]  # type: ignore[attr-defined]


async def test_passivation_then_restart_from_stream(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        async with open_actor_system(RuntimeSettings(idle_seconds=0.05)) as system:
            system_with_counter(system, store)
            await system.ask("counter", "p", Add(5))
            assert system.is_live("counter", "p")
            with trio.fail_after(2):
                while system.is_live("counter", "p"):
                    await trio.sleep(0.01)
            assert system.stats.passivated >= 1
            loads_before = Counter.loads
            # The next command starts a fresh actor that reloads state from NATS.
            assert (await system.ask("counter", "p", Add(1))).value == 6
            assert Counter.loads == loads_before + 1


async def test_crash_is_isolated_and_actor_restarts(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        async with open_actor_system(RuntimeSettings()) as system:
            system_with_counter(system, store)
            await system.ask("counter", "ok", Add(1))
            await system.ask("counter", "bad", Add(10))
            with pytest.raises(ActorCrashedError):
                await system.ask("counter", "bad", Boom())
            assert system.stats.crashed == 1
            assert not system.is_live("counter", "bad")
            # Others are untouched, and the crashed one comes back with its state.
            assert (await system.ask("counter", "ok", Add(1))).value == 2
            assert (await system.ask("counter", "bad", Add(1))).value == 11


async def test_full_mailbox_gives_busy_and_ask_times_out(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        async with open_actor_system(RuntimeSettings(mailbox_size=1)) as system:
            system_with_counter(system, store)
            await system.ask("counter", "slow", Add(0))
            async with trio.open_nursery() as nursery:
                nursery.start_soon(system.ask, "counter", "slow", Sleep(0.5))
                await trio.sleep(0.05)  # the actor is now sleeping on that command
                system.tell("counter", "slow", Add(1))  # fills the one-slot mailbox
                with pytest.raises(BusyError):
                    system.tell("counter", "slow", Add(1))
                with pytest.raises(DeadlineError):
                    await system.ask("counter", "slow", Add(1), within=0.1)
            # The told command ran; the timed-out ask was abandoned before it started.
            assert (await system.ask("counter", "slow", Add(0))).value == 1


async def test_two_writers_race_on_one_entity(bridge: NatsBridge) -> None:
    """Two actor systems (as two processes would) append to one entity at once."""
    store = JetStreamEventStore(bridge)
    with trio.fail_after(30):
        async with (
            open_actor_system(RuntimeSettings()) as one,
            open_actor_system(RuntimeSettings()) as two,
        ):
            system_with_counter(one, store)
            system_with_counter(two, store)
            await one.ask("counter", "race", Add(0))
            await two.ask("counter", "race", Add(0))

            async def writer(system: ActorSystem, base: int) -> None:
                for i in range(25):
                    await system.ask("counter", "race", Add(base + i))

            async with trio.open_nursery() as nursery:
                nursery.start_soon(writer, one, 1000)
                nursery.start_soon(writer, two, 2000)
        recs = await store.load(EntityRef("counter", "race"))
        values = [r.envelope.event.value for r in recs][2:]  # type: ignore[attr-defined]
        assert sorted(values) == sorted(
            [1000 + i for i in range(25)] + [2000 + i for i in range(25)]
        )
        # Each writer's own commands are stored in the order it issued them.
        assert [v for v in values if v < 2000] == [1000 + i for i in range(25)]
        assert [v for v in values if v >= 2000] == [2000 + i for i in range(25)]
        seqs = [r.seq for r in recs]
        assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)


async def test_conflicts_happen_and_are_retried(bridge: NatsBridge) -> None:
    """Two actor instances holding stale state: the loser catches up and retries."""
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        a = Counter("stale", store)
        b = Counter("stale", store)
        await a.start()
        await b.start()
        await a.handle(Add(1))
        committed = await b.handle(Add(2))  # b's expectation (seq 0) is stale
        assert b.conflicts == 1
        assert committed.value == 3  # decided again on caught-up state
        assert b.seen == [1, 2]


async def test_server_actor_validates(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    actor = ServerActor(store, "Chatto")
    await actor.start()
    with pytest.raises(InvalidInputError):
        await actor.handle(SetServerProfile(name="   "))
    done = await actor.handle(SetServerProfile(name="Ours", description="hi"))
    assert done.value == "Ours" and len(done.recorded) == 1
    # Setting the same profile again appends nothing.
    again = await actor.handle(SetServerProfile(name="Ours", description="hi"))
    assert again.recorded == ()
    assert (await actor.handle(RecordProbe(5))).value == 5


async def test_refusals_and_no_ops_are_decided_on_fresh_state(bridge: NatsBridge) -> None:
    """Another process changed the entity: a stale actor must not refuse or answer from old state."""
    store = JetStreamEventStore(bridge)
    with trio.fail_after(10):
        a = Counter("fresh", store)
        b = Counter("fresh", store)
        await a.start()
        await b.start()
        await a.handle(Add(5))  # b still believes the total is 0
        assert (await b.handle(Total(stale_ok=True))).value == 0  # declared good enough
        assert (await b.handle(Total())).value == 5
        await a.handle(Add(1))
        committed = await b.handle(Spend(6))  # would be "not enough" on b's old state
        assert committed.value == 0 and b.seen == [5, 1, -6]
        with pytest.raises(InvalidInputError):
            await b.handle(Spend(1))  # a real refusal stays a refusal


async def test_a_long_history_load_outlives_one_ask_but_not_the_next(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An ask that times out while its actor loads says so; the load goes on."""
    from actors import runtime
    from actors.events import Envelope
    from actors.ids import new_id
    from actors.rooms.actor import RoomActor
    from actors.rooms.commands import Join
    from actors.rooms.events import MemberJoined, MessagePosted, RoomCreated
    from chatto.codec import encode_envelope, subject_for

    caplog.set_level("INFO", logger="actors.runtime")
    monkeypatch.setattr(runtime, "SLOW_START_SECONDS", 0.0)  # log every load
    room = EntityRef("room", "long")
    envs = [Envelope(new_id(), room, 0, RoomCreated("long", "", "channel", "u1"))]
    envs.append(Envelope(new_id(), room, 0, MemberJoined("u1")))
    envs += [Envelope(new_id(), room, 0, MessagePosted("u1", "sealed", 1)) for _ in range(40_000)]
    with trio.fail_after(60):
        for i in range(0, len(envs), 1000):
            chunk = envs[i : i + 1000]
            await bridge.publish_batch([(subject_for(e), encode_envelope(e)) for e in chunk])
        store = JetStreamEventStore(bridge)
        async with open_actor_system(RuntimeSettings()) as system:
            system.register("room", lambda ident: RoomActor(ident, store))
            with pytest.raises(DeadlineError, match="still loading its history"):
                await system.ask("room", "long", Join("u2"), within=0.05)
            assert system.is_live("room", "long")  # the load was not abandoned
            done = await system.ask("room", "long", Join("u2"))
            assert done.recorded and done.last_seq > len(envs)
    assert any("took" in r.getMessage() and "room:long" in r.getMessage() for r in caplog.records)
