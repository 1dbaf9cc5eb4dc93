"""The projector: replay at start, follow live, rebuild identical state."""

from __future__ import annotations

import trio

from actors.events import SERVER, Recorded
from actors.hub import Hub
from actors.projector import Projector
from actors.runtime import RuntimeSettings, open_actor_system
from actors.server import RecordProbe, ServerActor, ServerView, SetServerProfile
from chatto.bus.bridge import NatsBridge
from chatto.eventstore import JetStreamEventStore


async def _write_history(bridge: NatsBridge) -> None:
    store = JetStreamEventStore(bridge)
    async with open_actor_system(RuntimeSettings()) as system:
        system.register("server", lambda _id: ServerActor(store, "Chatto"))
        for i in range(50):
            await system.ask("server", "", RecordProbe(i))
        await system.ask("server", "", SetServerProfile("Renamed", "desc"))


async def test_replay_rebuilds_the_same_state(bridge: NatsBridge) -> None:
    with trio.fail_after(20):
        await _write_history(bridge)
        store = JetStreamEventStore(bridge)
        views = []
        for _ in range(2):  # two "process starts" over the same stream
            view = ServerView("Chatto")
            projector = Projector(store, [view], Hub())
            async with trio.open_nursery() as nursery:
                await nursery.start(projector.serve)
                assert projector.caught_up
                nursery.cancel_scope.cancel()
            views.append(view)
            assert projector.position == await store.head()
        first, second = views
        assert (first.name, first.description, first.probes) == ("Renamed", "desc", 50)
        assert (second.name, second.description, second.probes) == (
            first.name,
            first.description,
            first.probes,
        )


async def test_follows_live_and_routes_to_topic_subscribers(bridge: NatsBridge) -> None:
    with trio.fail_after(20):
        store = JetStreamEventStore(bridge)
        hub = Hub()
        view = ServerView("Chatto")
        projector = Projector(store, [view], hub)
        async with trio.open_nursery() as nursery:
            await nursery.start(projector.serve)
            with hub.subscribe([SERVER.key]) as sub, hub.subscribe(["room.other"]) as other:
                async with open_actor_system(RuntimeSettings()) as system:
                    system.register("server", lambda _id: ServerActor(store, "Chatto"))
                    done = await system.ask("server", "", SetServerProfile("Live"))
                    await projector.wait_for(done.last_seq)
                assert view.name == "Live"
                rec = sub.receive.receive_nowait()
                assert rec.seq == done.last_seq
                assert other.receive.statistics().current_buffer_used == 0
            nursery.cancel_scope.cancel()


async def test_hub_drops_a_slow_subscriber_without_blocking() -> None:
    hub = Hub()
    with hub.subscribe(["t"], capacity=2) as slow, hub.subscribe(["t"], capacity=100) as fast:
        for i in range(10):
            hub.publish("t", i)
        assert slow.dropped and not fast.dropped
        assert fast.receive.statistics().current_buffer_used == 10
        slow.remove_topic("t")
        fast.add_topic("u")
        hub.publish("u", "x")
        assert hub.subscriber_count("t") == 1 and hub.subscriber_count("u") == 1


class Gate:
    """A read model whose ``prepare`` waits while the gate is shut (a stuck projection)."""

    def __init__(self) -> None:
        self.open = trio.Event()
        self.open.set()
        self.waiting = trio.Event()

    def shut(self) -> None:
        self.open, self.waiting = trio.Event(), trio.Event()

    async def prepare(self, batch: list[Recorded]) -> None:
        if not self.open.is_set():
            self.waiting.set()
            await self.open.wait()

    def apply(self, recorded: Recorded) -> None:
        pass


async def test_a_stalled_projector_is_reported_and_recovers(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        store = JetStreamEventStore(bridge)
        gate = Gate()
        projector = Projector(store, [ServerView("Chatto"), gate], Hub())
        async with trio.open_nursery() as nursery, open_actor_system(RuntimeSettings()) as system:
            await nursery.start(projector.serve)
            system.register("server", lambda _id: ServerActor(store, "Chatto"))
            # Progressing under a steady write load: trailing, never stalled.
            for i in range(40):
                done = await system.ask("server", "", RecordProbe(i))
                assert not projector.stalled(await store.head(), within=0.5)
                await trio.sleep(0.025)
            await projector.wait_for(done.last_seq)
            assert not projector.stalled(await store.head(), within=0.0)
            # Stuck: the head it was shown stays unreached.
            gate.shut()
            done = await system.ask("server", "", RecordProbe(99))
            await gate.waiting.wait()
            head = await store.head()
            assert projector.position < head
            assert not projector.stalled(head, within=0.5)  # first sight of the lag
            await trio.sleep(0.6)
            assert projector.stalled(await store.head(), within=0.5)
            gate.open.set()
            await projector.wait_for(done.last_seq)
            assert not projector.stalled(await store.head(), within=0.5)
            nursery.cancel_scope.cancel()
