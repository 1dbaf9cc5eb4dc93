"""Projector snapshots: a start from a snapshot ends in the state of a full replay.

Every test runs a real nats-server. The whole-server test populates users,
rooms, a group, a DM, threads, edits, reactions, a ban, roles and a deleted
user, then compares each read model's exported form (and the decrypted user
directory) after a start from a snapshot with a start that replays from zero.
"""

from __future__ import annotations

import base64
import logging
import time
import zlib
from array import array
from typing import Any

import attrs
import pytest
import trio

from actors.events import Recorded
from actors.hub import Hub
from actors.ids import new_id
from actors.notifications.follows import Follows
from actors.projector import Projector, SnapshotPolicy
from actors.rbac import AssignRole, CreateRole, RbacView, SetRule
from actors.rooms.index import Posts
from actors.runtime import RuntimeSettings, open_actor_system
from actors.server import RecordProbe, ServerActor, ServerView
from actors.snapshot import (
    MAGIC,
    SnapshotError,
    decode_snapshot,
    dumps,
    encode_snapshot,
    read_header,
)
from actors.users.actor import CreateUser, UpdateProfile, VerifyEmail
from actors.users.status import SetStatus
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM, bootstrap_storage
from chatto.eventstore import JetStreamEventStore
from chatto.services import Services
from chatto.snapshot_store import NatsSnapshotStore
from tests.conftest import ConfigFactory, NatsProc, ServerHandle, start_server

PLAINTEXT = [
    "alice",
    "Alice A",
    "alice@example.com",
    "alice.two@example.com",
    "Bobby B",
    "out fishing",
]
BODIES = ["hello general", "secret plans", "in the dm", "a reply", "edited text", "gone soon"]


# --- a small projector over the ServerView, for the fallback cases ----------------
async def _probes(bridge: NatsBridge, n: int) -> None:
    store = JetStreamEventStore(bridge)
    async with open_actor_system(RuntimeSettings()) as system:
        system.register("server", lambda _id: ServerActor(store, "Chatto"))
        for i in range(n):
            await system.ask("server", "", RecordProbe(i))


async def _start(bridge: NatsBridge, snapshots: bool = True) -> Projector:
    """A started (caught up) projector over a fresh ServerView and RbacView."""
    store = NatsSnapshotStore(bridge) if snapshots else None
    projector = Projector(
        JetStreamEventStore(bridge), [ServerView("Chatto"), RbacView()], Hub(), snapshots=store
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(projector.serve)
        nursery.cancel_scope.cancel()
    return projector


async def test_a_fresh_install_says_nothing_about_replaying(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.projector")
    with trio.fail_after(10):
        await _start(bridge)
    assert "replaying" not in caplog.text and "snapshot" not in caplog.text


async def test_corrupt_or_foreign_snapshots_mean_a_full_replay(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.projector")
    with trio.fail_after(30):
        await _probes(bridge, 20)
        first = await _start(bridge)
        assert "no projector snapshot stored" in caplog.text
        assert await first.write_snapshot()
        store = NatsSnapshotStore(bridge)
        good = await store.load()
        assert good is not None and read_header(good)["seq"] == 20
        header_end = good.index(b"\n", len(MAGIC)) + 1
        other_version = good.replace(b'"format":1', b'"format":99', 1)
        snap = decode_snapshot(good)
        other_schema = encode_snapshot(
            snap.seq, snap.event_id, {"server": (2, snap.models["server"])}
        )
        flipped = bytearray(good)
        flipped[-3] ^= 0xFF
        cases = {
            "checksum mismatch": bytes(flipped),
            "not a snapshot": b"garbage",
            "format 99": other_version,
            "model schemas": other_schema,
            "unreadable header": MAGIC + b"{oops\n" + good[header_end:],
        }
        for reason, data in cases.items():
            caplog.clear()
            await store.save(data)
            again = await _start(bridge)
            assert f"projector snapshot not used ({reason}" in caplog.text
            assert again.restored_seq == 0 and again.replayed == 20
            assert again.export_states() == first.export_states()
        await store.save(good)
        # A concurrent writer purged the chunks between metadata and read.
        js = bridge.js
        await bridge.call(lambda: js.purge_stream("OBJ_SNAPSHOTS", subject="$O.SNAPSHOTS.C.>"))
        caplog.clear()
        assert (await _start(bridge)).replayed == 20
        assert "projector snapshot not used (chunks missing" in caplog.text
        await store.save(good)
        await _probes(bridge, 5)
        caplog.clear()
        restored = await _start(bridge)
        assert "restored from the snapshot at sequence 20" in caplog.text
        assert (restored.restored_seq, restored.replayed, restored.position) == (20, 5, 25)
        full = await _start(bridge, snapshots=False)
        assert restored.export_states() == full.export_states()


async def test_snapshot_of_another_stream_is_not_used(
    bridge: NatsBridge, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="actors.projector")
    with trio.fail_after(30):
        await _probes(bridge, 12)
        assert await (await _start(bridge)).write_snapshot()
        js = bridge.js
        # The stream is recreated (an operator restored an older backup): fewer events.
        await bridge.call(lambda: js.delete_stream(EVENT_STREAM))
        await bootstrap_storage(bridge)
        await _probes(bridge, 4)
        caplog.clear()
        short = await _start(bridge)
        assert "covers sequence 12 but the event log ends at 4" in caplog.text
        assert short.replayed == 4 and short.export_states()["server"][1]["probes"] == 4
        # More events than the snapshot covers, but different ones.
        await _probes(bridge, 10)
        caplog.clear()
        other = await _start(bridge)
        assert "the event at sequence 12 is not the one it was taken at" in caplog.text
        assert other.export_states() == (await _start(bridge, snapshots=False)).export_states()
        # Purged: the events that follow the snapshot are gone.
        assert await other.write_snapshot()
        await _probes(bridge, 3)
        await bridge.call(lambda: js.purge_stream(EVENT_STREAM, keep=1))
        caplog.clear()
        await _start(bridge)
        assert "events after sequence 14 are no longer in the log" in caplog.text
        # `chatto restore` purges the stream and publishes the backup's events
        # again: they continue right after the old last sequence.
        latest = await _start(bridge, snapshots=False)
        store = NatsSnapshotStore(bridge)
        await store.save(_encoded(latest))
        await bridge.call(lambda: js.purge_stream(EVENT_STREAM))
        await _probes(bridge, 20)
        caplog.clear()
        await _start(bridge)
        assert "the event at sequence 17 is not the one it was taken at" in caplog.text


async def test_concurrent_writers_leave_one_whole_snapshot(bridge: NatsBridge) -> None:
    with trio.fail_after(30):
        writers = []
        for _ in range(3):  # three "processes" at three different positions
            await _probes(bridge, 5)
            writers.append(await _start(bridge, snapshots=False))
        store = NatsSnapshotStore(bridge)
        states = {w.position: w.export_states() for w in writers}
        for _round in range(3):
            async with trio.open_nursery() as nursery:
                for w in writers:
                    nursery.start_soon(store.save, _encoded(w))
            data = await store.load()
            assert data is not None
            snap = decode_snapshot(data)
            assert snap.seq in states
            assert {n: (snap.schemas[n], s) for n, s in snap.models.items()} == states[snap.seq]


def _encoded(projector: Projector) -> bytes:
    return encode_snapshot(projector.position, projector.last_event_id, projector.export_states())


# --- the whole server -----------------------------------------------------------
async def _populate(s: Services) -> dict[str, str]:
    """Users, rooms, a group, a DM, threads, edits, reactions, a ban, roles, a deletion."""
    pw = await s.accounts.hasher.hash("a long enough password")
    ids = {}
    people = [("alice", "Alice A"), ("bob", "Bob"), ("carol", "Carol C"), ("dave", "Dave D")]
    for login, name in people:
        uid = ids[login] = new_id()
        done = await s.actors.ask("user", uid, CreateUser(login, name, f"{login}@example.com", pw))
        await s.projector.wait_for(done.last_seq)
        await s.messaging.join_seeded(uid)
    alice, bob, carol = ids["alice"], ids["bob"], ids["carol"]
    await s.actors.ask("user", alice, VerifyEmail("alice.two@example.com"))
    await s.actors.ask("user", bob, UpdateProfile("Bobby B"))
    await s.actors.ask("user", alice, SetStatus("out fishing", "🎣"))
    await s.actors.ask("user", carol, SetStatus("carol's status", ""))
    group = await s.messaging.create_group(alice, "Team")
    room = await s.messaging.create_room(alice, "plans", "topic", group.id)
    for uid in (bob, carol):
        await s.messaging.join(uid, room.id)
    dm = await s.messaging.start_dm(alice, [bob])
    hello = await s.messaging.post(alice, "general", "hello general")
    root = await s.messaging.post(bob, room.id, "secret plans")
    await s.messaging.post(alice, dm.id, "in the dm")
    await s.messaging.post(carol, room.id, "a reply", thread_root=root.id, echo=True)
    await s.messaging.post(carol, "general", "carol was here")
    await s.messaging.post(ids["dave"], "general", "dave was here")
    await s.messaging.edit(alice, "general", hello.id, "edited text")
    await s.messaging.react(bob, "general", hello.id, "tada", True)
    gone = await s.messaging.post(bob, room.id, "gone soon", thread_root=root.id)
    await s.messaging.retract(bob, room.id, gone.id, False)
    await s.messaging.ban(alice, room.id, bob, "rude", 0)
    await s.messaging.unban(alice, room.id, bob)
    await s.messaging.ban(alice, room.id, bob, "again", 4_000_000_000_000)
    for command in (
        CreateRole("helper", "Helper"),
        AssignRole("helper", bob, True),
        SetRule("role:helper", f"room:{room.id}", "message.manage", "allow"),
    ):
        await s.actors.ask("rbac", "", command)
    await s.deleter.request(carol, carol)
    while not s.directory.users[carol].deleted:
        await trio.sleep(0.02)
    await s.projector.wait_for(await s.store.head())
    return {**ids, "room": room.id, "hello": hello.id}


def _plain_users(s: Services) -> dict[str, Any]:
    d = s.directory
    return {
        "users": {u: attrs.asdict(r) for u, r in d.users.items()},
        "by_login": dict(d.by_login),
        "by_email": dict(d.by_email),
    }


def _without_tombstones(rooms: Any, drop: set[str]) -> Any:
    """Rooms state minus messages whose stored events were erased (see below)."""
    out = {**rooms, "messages": dict(rooms["messages"]), "rooms": {}}
    dropped_seqs = {rooms["messages"][m][3] for m in drop & set(rooms["messages"])}
    for mid in drop & set(out["messages"]):
        root = out["messages"].pop(mid)[9]
        if root in out["messages"]:
            out["messages"][root] = [*out["messages"][root]]
            out["messages"][root][14] -= 1
    authors = out.pop("authors")
    out.pop("hot_rooms")  # the order of use (issue #22), not state from history
    for rid, row in rooms["rooms"].items():
        # Who posted and the last post's seq (issue #22) count erased posts too.
        *head, tombs, pending, _authors, _last, index = row
        assert not pending
        parts = ("timeline", "threads", "touches", "posts", "unread", "attached")
        timeline, threads, touches, posts, unread, attached = (index["inline"][k] for k in parts)
        # The touch index and tombstones (issue #22) of erased messages too.
        pairs = [(t, e) for t, e in zip(*touches, strict=True) if t not in dropped_seqs]
        touches = [[t for t, _ in pairs], [e for _, e in pairs]]
        tombs = {s: m for s, m in tombs.items() if m not in drop}
        kept = [s for s in _seqs(timeline) if s not in dropped_seqs]
        new_threads = {}
        for r, t in threads.items():
            rest = [s for s in _seqs(t) if s not in dropped_seqs]
            if rest:
                new_threads[r] = rest
        columns = _post_rows(posts, authors, dropped_seqs)
        counted = {
            "by_author": {
                authors[int(a)]: _seqs(v) for a, v in unread["by_author"].items() if _seqs(v)
            },
            "retracted": [s for s in _seqs(unread["retracted"]) if s not in dropped_seqs],
        }
        extra = [touches, tombs, columns, counted, attached]
        out["rooms"][rid] = [*head, kept, new_threads, *extra]
    return out


def _seqs(text: str) -> list[int]:
    seqs = array("q")
    seqs.frombytes(base64.b64decode(text))
    return seqs.tolist()


def _post_rows(posts: Any, authors: list[str], drop: set[int]) -> list[tuple[Any, ...]]:
    """A room's compact columns (issue #22) as rows, authors by id, erased posts out.

    Positions and the id index's layout depend on what was erased before a
    replay, so the rows are compared, and every row's id must be found.
    """
    back = Posts.restore(posts)
    rows = []
    for at, seq in enumerate(back.seqs):
        if seq in drop:
            continue
        replied = back.replied[at]
        rows.append(
            (
                seq,
                authors[back.authors[at]],
                back.roots[at],
                authors[replied] if replied >= 0 else "",
                back.flags[at],
            )
        )
    return rows


async def _run(
    nursery: trio.Nursery, make: ConfigFactory, nats: NatsProc, **env: Any
) -> ServerHandle:
    settings = {
        "CHATTO_NATS_EMBEDDED_ENABLED": "false",
        "CHATTO_NATS_URL": nats.url,
        "CHATTO_NATS_TOKEN": nats.token,
        "CHATTO_AUTH_BCRYPT_COST": "4",
        "CHATTO_SNAPSHOTS_MIN_INTERVAL_SECONDS": "3600",
        # Processes of one server share its master key: the first config's.
        "CHATTO_KMS_MASTER_KEY_FILE": "chatto-0.master.key",
        **env,
    }
    config = make(**settings)
    return await start_server(nursery, config)


async def test_start_from_snapshot_equals_full_replay(
    nursery: trio.Nursery,
    nats_server: NatsProc,
    bridge: NatsBridge,
    make_config: ConfigFactory,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO)
    with trio.fail_after(120):
        one = await _run(nursery, make_config, nats_server)
        ids = await _populate(one.running.services)
        head1 = await one.running.services.store.head()
        await one.stop()  # graceful: writes the snapshot
        assert f"projector snapshot written at sequence {head1}" in caplog.text
        raw = await NatsSnapshotStore(bridge).load()
        assert raw is not None
        _assert_no_plaintext(raw)
        snap = decode_snapshot(raw)
        carol = snap.models["users"]["users"][ids["carol"]]
        assert carol[2] is True and carol[8:] == [None, None, [], None, None]

        # Events after the snapshot, written by a process that does not snapshot.
        two = await _run(nursery, make_config, nats_server, CHATTO_SNAPSHOTS_ENABLED="false")
        s2 = two.running.services
        await s2.messaging.post(ids["alice"], ids["room"], "after the snapshot")
        await s2.actors.ask("user", ids["alice"], UpdateProfile("Alice Again"))
        await s2.messaging.retract(ids["alice"], "general", ids["hello"], False)
        # An account deleted after the snapshot: the restore must not bring it back.
        await s2.deleter.request(ids["dave"], ids["dave"])
        while not s2.directory.users[ids["dave"]].deleted:
            await trio.sleep(0.02)
        await two.stop()

        caplog.clear()
        three = await _run(nursery, make_config, nats_server)
        s3 = three.running.services
        assert f"restored from the snapshot at sequence {head1}" in caplog.text
        assert s3.projector.restored_seq == head1 and s3.projector.replayed > 0
        assert s3.directory.users[ids["alice"]].display_name == "Alice Again"
        # The status came back from its sealed form in the snapshot.
        assert s3.directory.users[ids["alice"]].status_text == "out fishing"
        dave = s3.directory.users[ids["dave"]]
        assert dave.deleted and not (dave.login or dave.display_name or dave.emails)
        assert "dave" not in s3.directory.by_login
        daves = [m for m in s3.messaging.rooms.messages.values() if m.author_id == ids["dave"]]
        assert daves and all(m.retracted and not m.body for m in daves)
        restored, restored_users = s3.projector.export_states(), _plain_users(s3)
        # Indexes are objects of their own (schema 9): compared loaded and inline.
        rooms3 = s3.messaging.rooms
        await rooms3.ensure(*rooms3.rooms)
        restored["rooms"] = (rooms3.snapshot_schema, rooms3.export_state(inline=True))
        await three.stop()

        full = await _run(nursery, make_config, nats_server, CHATTO_SNAPSHOTS_ENABLED="false")
        s4 = full.running.services
        assert s4.projector.restored_seq == 0
        replayed, replayed_users = s4.projector.export_states(), _plain_users(s4)
        await full.stop()

        assert restored_users == replayed_users
        for text in PLAINTEXT + BODIES:
            assert text not in caplog.text
        assert set(restored) == {"server", "users", "rooms", "rbac", "notifications"}
        for name in ("server", "users", "rbac"):
            assert dumps(restored[name]) == dumps(replayed[name]), name
        # Automatic thread follows come from replies: a replay never sees a
        # retracted (erased) reply, so it may follow fewer threads; the rest
        # of the notification state is identical.
        notes_restored, notes_replayed = restored["notifications"][1], replayed["notifications"][1]
        for part in ("feeds", "mentions", "reply_mentions", "unfollowed", "prefs"):
            assert notes_restored[part] == notes_replayed[part], part
        follows_replayed = Follows.restore(notes_replayed["follows"])
        follows_restored = Follows.restore(notes_restored["follows"])
        for user in follows_replayed.by_user:
            assert set(follows_replayed.of(user)) <= set(follows_restored.of(user))
        # A retraction erases the message's stored events, so a replay from zero
        # never sees the message, while a process that lived through it (and
        # so its snapshot) keeps a tombstone: retracted, body gone. Apart from
        # those tombstones the two states are identical.
        tombstones = set(restored["rooms"][1]["messages"]) - set(replayed["rooms"][1]["messages"])
        assert tombstones
        for mid in tombstones:
            row = restored["rooms"][1]["messages"][mid]
            assert row[12] is True and row[5] == "" and row[13] == {}
        assert dumps(_without_tombstones(restored["rooms"][1], tombstones)) == dumps(
            _without_tombstones(replayed["rooms"][1], tombstones)
        )


def _assert_no_plaintext(raw: bytes) -> None:
    body = zlib.decompress(raw[raw.index(b"\n", len(MAGIC)) + 1 :]).decode()
    for text in PLAINTEXT + BODIES:
        assert text not in body, text


async def test_an_erasing_event_soon_rewrites_the_snapshot(
    nursery: trio.Nursery, nats_server: NatsProc, make_config: ConfigFactory
) -> None:
    with trio.fail_after(60):
        server = await _run(
            nursery,
            make_config,
            nats_server,
            CHATTO_SNAPSHOTS_MIN_INTERVAL_SECONDS="0.2",
            CHATTO_SNAPSHOTS_EVERY_EVENTS="1000000",
        )
        s = server.running.services
        pw = await s.accounts.hasher.hash("a long enough password")
        uid = new_id()
        done = await s.actors.ask("user", uid, CreateUser("dave", "Dave", "dave@example.com", pw))
        await s.projector.wait_for(done.last_seq)
        await s.messaging.join_seeded(uid)
        posted = await s.messaging.post(uid, "general", "retract me")
        assert await s.projector.write_snapshot()
        await s.messaging.retract(uid, "general", posted.id, False)
        head = await s.store.head()
        store = NatsSnapshotStore(s.bridge)

        async def load() -> bytes | None:
            try:
                return await store.load()
            except SnapshotError:
                return None  # read while the writer replaced it: read again

        data = await load()
        while data is None or read_header(data)["seq"] < head:
            await trio.sleep(0.1)
            data = await load()
        row = decode_snapshot(data).models["rooms"]["messages"][posted.id]
        assert row[12] is True and row[5] == ""
        await server.stop()


def test_policy_defaults_match_the_config() -> None:
    from chatto.config_schema import SnapshotsConfig

    c, p = SnapshotsConfig(), SnapshotPolicy()
    assert (c.every_events, c.min_interval_seconds) == (p.every_events, p.min_interval)


def test_sliced_encoding_is_the_plain_sorted_json() -> None:
    from actors.snapshot import dumps_sliced

    state = {
        "b": {"rooms": {f"r{i}": [i, {"z": 1, "a": [2]}] for i in range(25)}, "n": 1},
        "a": {"big": {str(i): {"y": i, "x": "é"} for i in range(10)}, "small": {"k": []}},
    }
    for size in (1, 3, 7, 1000):
        assert dumps_sliced(state, size) == dumps(state)


async def test_backups_never_carry_snapshots(bridge: NatsBridge) -> None:
    from chatto.backup.dump import export_all
    from chatto.backup.progress import Silent

    with trio.fail_after(30):
        await _probes(bridge, 3)
        assert await (await _start(bridge)).write_snapshot()
        members = await export_all(bridge, True, Silent())
        assert not any("SNAPSHOT" in name for name in members)
        assert all(o["name"] != "projector" for o in members["objects/OBJECTS.jsonl"])


class SlowCounter:
    """A read model whose export takes a while and notices if it changes meanwhile."""

    snapshot_name = "counter"
    snapshot_schema = 1

    def __init__(self, ticks: list[int]) -> None:
        self.applied = 0
        self.seqs: list[int] = []
        self.ticks = ticks  # bumped by a task on the event loop

    def apply(self, recorded: Recorded) -> None:
        self.applied += 1
        self.seqs.append(recorded.seq)

    def export_state(self) -> dict[str, Any]:
        before, ticks = self.applied, self.ticks[0]
        time.sleep(0.05)  # in the export thread: the projector must not apply meanwhile
        return {
            "applied": before,
            "changed_during_export": self.applied != before,
            "loop_ran_during_export": self.ticks[0] > ticks,
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        self.applied = state["applied"]


async def test_snapshots_written_under_load_match_their_sequence(bridge: NatsBridge) -> None:
    """Events keep arriving while snapshots are exported (off the event loop)."""
    with trio.fail_after(60):
        ticks = [0]
        counter = SlowCounter(ticks)
        projector = Projector(
            JetStreamEventStore(bridge), [counter], Hub(), snapshots=NatsSnapshotStore(bridge)
        )
        store = NatsSnapshotStore(bridge)
        written = []
        async with trio.open_nursery() as nursery:
            await nursery.start(projector.serve)

            async def ticker() -> None:
                while True:
                    ticks[0] += 1
                    await trio.sleep(0.002)

            nursery.start_soon(ticker)
            probing = trio.Event()

            async def probes() -> None:
                await _probes(bridge, 600)
                probing.set()

            nursery.start_soon(probes)
            while not probing.is_set():
                if await projector.write_snapshot():
                    data = await store.load()
                    assert data is not None
                    written.append(decode_snapshot(data))
                await trio.sleep(0.01)
            nursery.cancel_scope.cancel()
        assert written and written[0].seq < counter.seqs[-1]  # taken while events arrived
        for snap in written:
            state = snap.models["counter"]
            assert not state["changed_during_export"]
            assert state["applied"] == sum(1 for s in counter.seqs if s <= snap.seq)
            assert state["loop_ran_during_export"]  # reads kept being served
