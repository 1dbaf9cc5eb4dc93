"""Two Chatto OS processes on one 3-node NATS cluster (stream and buckets R3).

Real processes (``python -m chatto run -c FILE``, killable with SIGKILL), real
``nats-server`` nodes clustered on loopback, clients over HTTP and WebSocket.
What each test proves is in its docstring; figures (acked, failed attempts,
reconnects) are printed so a failing run explains itself.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import attrs
import httpx
import pytest
import trio

from tests.clusterclient import (
    Follower,
    Poster,
    check_history,
    dumps,
    gql,
    history,
    per_author_order_kept,
    user,
)
from tests.natscluster import ChattoProc, NatsCluster, cluster_config, stream_leader
from tests.smtp_sink import SmtpSink

JOIN = "mutation($r: ID!) { joinRoom(roomId: $r) { isMember } }"
START_DM = "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }"


@pytest.fixture
def nats_cluster(tmp_path: Path) -> Iterator[NatsCluster]:
    cluster = NatsCluster.create(tmp_path / "nats")
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()


@attrs.define
class Pair:
    cluster: NatsCluster
    sink: SmtpSink
    a: ChattoProc
    b: ChattoProc


@pytest.fixture
async def pair(
    nursery: trio.Nursery, nats_cluster: NatsCluster, tmp_path: Path
) -> AsyncIterator[Pair]:
    """Two Chatto processes (same secrets) on the cluster, started together."""
    sink = SmtpSink()
    port = await nursery.start(sink.serve)
    shared = cluster_config(nats_cluster, port)
    a, b = ChattoProc("a", shared, tmp_path / "a"), ChattoProc("b", shared, tmp_path / "b")
    try:
        a.start()
        b.start()  # at once: both bootstrap storage and seed rooms concurrently
        await trio.to_thread.run_sync(a.wait_ready)
        await trio.to_thread.run_sync(b.wait_ready)
        yield Pair(nats_cluster, sink, a, b)
    finally:
        a.kill()
        b.kill()


async def test_users_on_two_processes_chat_and_dm_in_order(pair: Pair) -> None:
    """A room and a DM across processes: each side sees every message, once, in order."""
    a, b = pair.a, pair.b
    with trio.fail_after(120):
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=20) as cb,
        ):
            alice, ta = await user(ca, pair.sink, "alice")
            bob, tb = await user(cb, pair.sink, "bob")
            room = (await gql(ca, ta, 'mutation { createRoom(name: "team") { id } }'))[
                "createRoom"
            ]["id"]
            await gql(cb, tb, JOIN, r=room)  # B's room actor loads what A wrote
            dm = (await gql(ca, ta, START_DM, p=[bob]))["startDM"]["id"]
            assert (await gql(cb, tb, START_DM, p=[alice]))["startDM"]["id"] == dm
            async with trio.open_nursery() as n:
                followers = []
                for token, url in ((ta, a.url), (tb, b.url)):
                    for r in (room, dm):
                        f = Follower(token, r, [url])
                        await n.start(f.serve)
                        followers.append(f)
                posters = [
                    Poster("alice", ta, room, [a.url]),
                    Poster("bob", tb, room, [b.url]),
                    Poster("alice-dm", ta, dm, [a.url]),
                    Poster("bob-dm", tb, dm, [b.url]),
                ]
                for i in range(12):  # strictly interleaved: the order is known
                    for p in posters:
                        assert await p.post_one(i, max_attempts=1), p.errors
                want = {
                    room: [f"{who}-{i}" for i in range(12) for who in ("alice", "bob")],
                    dm: [f"{who}-dm-{i}" for i in range(12) for who in ("alice", "bob")],
                }
                for f in followers:
                    while len(f.messages) < len(want[f.room]):
                        await trio.sleep(0.05)
                n.cancel_scope.cancel()
            for r, bodies in want.items():
                for c, token in ((ca, ta), (cb, tb)):
                    assert [m["body"] for m in await history(c, token, r)] == bodies
            for f in followers:
                assert f.bodies() == want[f.room]
                assert f.live_count == len(want[f.room]) and f.reconnects == 0


async def test_concurrent_posts_to_one_room_from_both_processes(pair: Pair) -> None:
    """Writers on both processes race on one room: nothing lost, nothing doubled.

    Four posters (two per process) append to the same room entity at once,
    so the processes' room actors keep losing the optimistic-concurrency
    race to each other and must catch up and retry.
    """
    a, b = pair.a, pair.b
    with trio.fail_after(150):
        async with (
            httpx.AsyncClient(base_url=a.url, timeout=20) as ca,
            httpx.AsyncClient(base_url=b.url, timeout=20) as cb,
        ):
            _, ta = await user(ca, pair.sink, "alice")
            _, tb = await user(cb, pair.sink, "bob")
            room = "general"  # every new user joins it
            posters = [
                Poster("a1", ta, room, [a.url]),
                Poster("a2", ta, room, [a.url]),
                Poster("b1", tb, room, [b.url]),
                Poster("b2", tb, room, [b.url]),
            ]
            follow_a, follow_b = Follower(ta, room, [a.url]), Follower(tb, room, [b.url])

            async def run(p: Poster) -> None:
                for i in range(25):
                    await p.post_one(i)

            async with trio.open_nursery() as n:
                await n.start(follow_a.serve)
                await n.start(follow_b.serve)
                async with trio.open_nursery() as writers:
                    for p in posters:
                        writers.start_soon(run, p)
                stored = await history(ca, ta, room)
                for f in (follow_a, follow_b):
                    while len(f.messages) < len(stored):
                        await trio.sleep(0.05)
                n.cancel_scope.cancel()
            figures = check_history(stored, posters)
            print("concurrent posts:", dumps(figures), {p.prefix: p.messages for p in posters})
            assert figures["acked"] == 100
            assert not figures["acked_missing"] and not figures["duplicates"]
            assert not figures["unattempted_present"]
            assert all(per_author_order_kept(stored, p) for p in posters)
            assert [m["body"] for m in await history(cb, tb, room)] == [m["body"] for m in stored]
            # Both processes delivered the same order, the stream's order.
            assert follow_a.bodies() == follow_b.bodies() == [m["body"] for m in stored]


async def test_kill9_of_a_chatto_process_under_load(pair: Pair) -> None:
    """SIGKILL a process mid-posting: every acknowledged post survives; clients resume.

    The posters and one follower start on process A; when A dies they fail
    over to B, A is restarted on the same port, and a last round posts
    through the restarted A.
    """
    a, b = pair.a, pair.b
    with trio.fail_after(150):
        async with httpx.AsyncClient(base_url=b.url, timeout=20) as cb:
            _, ta = await user(cb, pair.sink, "alice")
            _, tb = await user(cb, pair.sink, "bob")
        room = "general"
        posters = [
            Poster("alice", ta, room, [a.url, b.url]),
            Poster("bob", tb, room, [a.url, b.url]),
        ]
        follow_a = Follower(ta, room, [a.url, b.url])
        follow_b = Follower(tb, room, [b.url])
        killed = trio.Event()

        async def run(p: Poster) -> None:
            for i in range(60):
                await p.post_one(i)
                if i == 15 and not killed.is_set():
                    killed.set()
                    await trio.to_thread.run_sync(a.kill)

        async with trio.open_nursery() as n:
            await n.start(follow_a.serve)
            await n.start(follow_b.serve)
            async with trio.open_nursery() as writers:
                for p in posters:
                    writers.start_soon(run, p)
            assert not a.running
            a.start()  # same port, same config
            await trio.to_thread.run_sync(a.wait_ready)
            again = Poster("after", ta, room, [a.url])
            for i in range(5):
                assert await again.post_one(i, max_attempts=1), again.errors
            posters.append(again)
            async with httpx.AsyncClient(base_url=a.url, timeout=20) as ca:
                stored = await history(ca, ta, room)
            for f in (follow_a, follow_b):
                while len(f.messages) < len(stored):
                    await trio.sleep(0.05)
            n.cancel_scope.cancel()
        figures = check_history(stored, posters)
        figures["follower_reconnects"] = follow_a.reconnects
        print("kill -9 chatto:", dumps(figures), {p.prefix: p.messages for p in posters})
        assert figures["acked"] == 60 + 60 + 5
        assert not figures["acked_missing"] and not figures["duplicates"]
        assert not figures["unattempted_present"]
        assert sum(p.failed_attempts for p in posters[:2]) >= 1  # A really died under them
        assert follow_a.reconnects >= 1 and follow_b.reconnects == 0
        assert follow_a.bodies() == follow_b.bodies() == [m["body"] for m in stored]


async def test_kill9_of_one_nats_node_of_three(pair: Pair) -> None:
    """SIGKILL the EVT stream leader while both processes post.

    With two of three nodes left: no acknowledged post is lost, posting
    continues after the election, live delivery continues, /readyz is 200
    again on both processes. With two nodes down: /readyz is 503 (no
    JetStream quorum). After restarts: 200 again and posts succeed.
    """
    a, b, cluster = pair.a, pair.b, pair.cluster
    with trio.fail_after(150):
        async with httpx.AsyncClient(base_url=a.url, timeout=20) as ca:
            _, ta = await user(ca, pair.sink, "alice")
            _, tb = await user(ca, pair.sink, "bob")
        room = "general"
        posters = [Poster("alice", ta, room, [a.url]), Poster("bob", tb, room, [b.url])]
        followers = [Follower(ta, room, [a.url, b.url]), Follower(tb, room, [b.url, a.url])]
        stop = trio.Event()
        samples: list[tuple[str, str, int]] = []  # (phase, process, status)
        phase = "steady"

        async def run(p: Poster) -> None:
            for i in range(1000):
                if stop.is_set():
                    return
                await p.post_one(i)

        async def sample() -> None:
            while True:
                for proc in (a, b):
                    status, _ = await trio.to_thread.run_sync(proc.ready)
                    samples.append((phase, proc.name, status))
                await trio.sleep(0.25)

        async def acked_more(n: int) -> None:
            marks = [len(p.acked) for p in posters]
            with trio.move_on_after(60):
                while any(len(p.acked) < m + n for p, m in zip(posters, marks, strict=True)):
                    await trio.sleep(0.05)
                return
            raise AssertionError(f"posting stalled in {phase}: {[p.messages for p in posters]}")

        async def wait_ready_all(want: int) -> None:
            while True:
                statuses = [(await trio.to_thread.run_sync(p.ready))[0] for p in (a, b)]
                if statuses == [want, want]:
                    return
                await trio.sleep(0.25)

        two_down: list[dict[str, object]] = []

        t0 = trio.current_time()

        def enter(name: str) -> None:
            nonlocal phase
            phase = name
            acked = [len(p.acked) for p in posters]
            print(f"{trio.current_time() - t0:6.1f}s {name} acked={acked}", flush=True)

        async def drive() -> None:
            await acked_more(10)
            leader = stream_leader(cluster, "EVT")
            assert leader is not None
            enter("one_down")
            await trio.to_thread.run_sync(cluster.kill, leader)
            await acked_more(15)  # writes continue once a new leader is elected
            await wait_ready_all(200)
            enter("one_down_settled")
            live_before = [f.live_count for f in followers]
            await acked_more(10)
            # Live delivery goes on (ordered consumers re-created elsewhere).
            while any(f.live_count <= m for f, m in zip(followers, live_before, strict=True)):
                await trio.sleep(0.05)
            enter("rejoining")
            await trio.to_thread.run_sync(cluster.restart, leader)
            await acked_more(10)
            enter("two_down")
            down = [i for i in range(3) if i != leader]
            for i in down:
                await trio.to_thread.run_sync(cluster.kill, i)
            await wait_ready_all(503)
            two_down.append((await trio.to_thread.run_sync(a.ready))[1])
            enter("restored")
            await trio.to_thread.run_sync(cluster.restart, *down)
            await wait_ready_all(200)
            await acked_more(10)
            stop.set()

        async with trio.open_nursery() as n:
            for f in followers:
                await n.start(f.serve)
            n.start_soon(sample)
            async with trio.open_nursery() as writers:
                for p in posters:
                    writers.start_soon(run, p)
                await drive()
            async with httpx.AsyncClient(base_url=b.url, timeout=20) as cb:
                stored = await history(cb, tb, room)
            for f in followers:
                while len(f.messages) < len(stored):
                    await trio.sleep(0.05)
            n.cancel_scope.cancel()
        figures = check_history(stored, posters)
        readyz: dict[str, int] = {}
        for ph, proc, status in samples:
            key = f"{ph}:{proc}:{status}"
            readyz[key] = readyz.get(key, 0) + 1
        print("kill -9 nats node:", dumps(figures), {p.prefix: p.messages for p in posters}, readyz)
        assert not figures["acked_missing"] and not figures["duplicates"]
        assert not figures["unattempted_present"]
        assert two_down[0]["checks"]["jetstream_quorum"] is False  # type: ignore[index]
        assert all(s == 200 for ph, _, s in samples if ph == "one_down_settled")
        assert all(f.bodies() == [m["body"] for m in stored] for f in followers)
