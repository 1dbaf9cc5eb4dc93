"""Benchmark: the cost a mention adds to a post, medians in one run.

Starts a complete Chatto in-process (embedded NATS in a temp dir, HTTP on a
loopback port 0), creates U users in one channel created by the poster (so
the poster may use @room), then posts sequentially over HTTP, one post per
kind in turn, R rounds: ``plain`` (no mention), ``one`` (``@user1``),
``five`` (five users), ``room`` (``@room``: every member is mentioned and
notified). Interleaving the kinds spreads the machine's noise over all of
them. Reported: each kind's ``postMessage`` latency (median, p90, ms) and
the median's difference from ``plain``: the cost a mention adds end to end.

In the same run, in-process and without I/O: finding and resolving the
mentions of a 200-byte body (``find_mentions``, µs) and projecting a post
into the notification read model (``NotificationFeed.apply``, µs) for each
kind, in a room of U members.

Users are created with bcrypt cost 4 (setup only). Exit 1 if a post failed
or a mention was not stored. Run: ``.venv/bin/python scripts/bench_mentions.py``
(``--smoke`` for CI; ``--json`` for the report path).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import trio

from actors.events import EntityRef, Envelope, Recorded
from actors.ids import new_id
from actors.notifications.feed import NotificationFeed
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import MemberJoined, MessagePosted, RoomCreated
from actors.users.actor import CreateUser
from chatto.config import Config, load_config
from chatto.initcmd import write_initial_config
from chatto.messaging.mentions import find_mentions
from chatto.server import Running, serve_chatto
from chatto.services import Services

POST = """mutation($r: ID!, $b: String!) {
  postMessage(roomId: $r, body: $b) { id mentions mentionsRoom } }"""
KINDS = ("plain", "one", "five", "room")
FILLER = "Status update on the release: the build is green and the notes are drafted. "


def body_for(kind: str) -> str:
    names = {"plain": "", "one": "@user1 ", "five": "@user1 @user2 @user3 @user4 @user5 "}
    prefix = "@room " if kind == "room" else names[kind]
    return (prefix + FILLER * 3)[:200]


def stats_ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "median": round(statistics.median(samples) * 1e3, 3),
        "p90": round(ordered[max(0, int(len(ordered) * 0.9) - 1)] * 1e3, 3),
    }


def stats_us(samples: list[float]) -> dict[str, float]:
    return {"n": len(samples), "median": round(statistics.median(samples) * 1e6, 2)}


def make_config(tmp: Path) -> Config:
    path = tmp / "chatto.toml"
    write_initial_config(path)
    env = {
        "CHATTO_WEBSERVER_PORT": "0",
        "CHATTO_AUTH_BCRYPT_COST": "4",
        "CHATTO_LOGGING_LEVEL": "warning",
        # Sequential posts from one user: no rate limit in the way.
        "CHATTO_LIMITS_MESSAGES_PER_USER_ROOM": "1000000/1",
    }
    return load_config(path, environ=env)


async def setup(services: Services, users: int) -> tuple[str, str, list[str]]:
    """U users (user0 .. user<U-1>), a channel of user0 they all joined; its id,
    user0's bearer token and the user ids."""
    pw_hash = await services.accounts.hasher.hash("benchmark password")
    ids = []
    for i in range(users):
        uid = new_id()
        cmd = CreateUser(f"user{i}", f"user{i}", f"user{i}@example.com", pw_hash)
        done = await services.actors.ask("user", uid, cmd)
        await services.projector.wait_for(done.last_seq)
        ids.append(uid)
    room = await services.messaging.create_room(ids[0], "bench", "", "")
    for uid in ids[1:]:
        await services.messaging.join(uid, room.id)
    token = await services.authn.sessions.issue_bearer(ids[0], 1)
    return room.id, token, ids


async def end_to_end(url: str, token: str, room: str, rounds: int) -> dict[str, Any]:
    samples: dict[str, list[float]] = {k: [] for k in KINDS}
    failures = 0
    headers = {"authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=30, headers=headers) as http:
        for _ in range(2):  # warm-up: keys, actors, connection
            await http.post(
                "/api/graphql", json={"query": POST, "variables": {"r": room, "b": "x"}}
            )
        for _ in range(rounds):
            for kind in KINDS:
                variables = {"r": room, "b": body_for(kind)}
                t0 = time.perf_counter()
                r = await http.post("/api/graphql", json={"query": POST, "variables": variables})
                elapsed = time.perf_counter() - t0
                msg = r.json().get("data", {}) or {}
                got = msg.get("postMessage")
                want = {"plain": 0, "one": 1, "five": 5, "room": 0}[kind]
                if (
                    got is None
                    or len(got["mentions"]) != want
                    or got["mentionsRoom"] != (kind == "room")
                ):
                    failures += 1
                    continue
                samples[kind].append(elapsed)
    out: dict[str, Any] = {k: stats_ms(v) for k, v in samples.items() if v}
    base = out["plain"]["median"]
    out["added_median_ms"] = {k: round(out[k]["median"] - base, 3) for k in KINDS[1:] if k in out}
    out["failures"] = failures
    return out


def in_process(services: Services, members: list[str], repeats: int) -> dict[str, Any]:
    """find_mentions against the live user directory; projection into a private feed."""
    logins = {f"user{i}": uid for i, uid in enumerate(members)}
    room_members = set(members)
    find: dict[str, list[float]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            body = body_for(kind)
            t0 = time.perf_counter()
            find_mentions(body, members[0], room_members, logins.get, True)
            find[kind].append(time.perf_counter() - t0)

    rooms = RoomDirectory()
    feed = NotificationFeed(rooms)
    seq = 0

    def apply(event: Any, event_id: str = "") -> float:
        nonlocal seq
        seq += 1
        rec = Recorded(seq, Envelope(event_id or f"e{seq}", EntityRef("room", "r"), 0, event))
        rooms.apply(rec)
        t0 = time.perf_counter()
        feed.apply(rec)
        return time.perf_counter() - t0

    apply(RoomCreated("r", "", "channel", members[0]))
    for uid in members:
        apply(MemberJoined(uid))
    mentions = {"plain": (), "one": tuple(members[1:2]), "five": tuple(members[1:6]), "room": ()}
    project: dict[str, list[float]] = {k: [] for k in KINDS}
    for _ in range(repeats):
        for kind in KINDS:
            ev = MessagePosted(members[0], "sealed", 1, mentions=mentions[kind])
            if kind == "room":
                ev = MessagePosted(members[0], "sealed", 1, mention_room=True)
            project[kind].append(apply(ev))
    del services
    return {
        "find_mentions_us": {k: stats_us(v) for k, v in find.items()},
        "feed_apply_us": {k: stats_us(v) for k, v in project.items()},
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    shutdown = trio.Event()
    with (
        tempfile.TemporaryDirectory(prefix="chatto-bench-mentions-") as tmp,
        trio.fail_after(args.timeout),
    ):
        async with trio.open_nursery() as nursery:
            running: Running = await nursery.start(serve_chatto, make_config(Path(tmp)), shutdown)
            try:
                services = running.services
                room, token, ids = await setup(services, args.users)
                e2e = await end_to_end(running.http_url, token, room, args.rounds)
                local = in_process(services, ids, args.repeats)
            finally:
                shutdown.set()
                nursery.cancel_scope.deadline = trio.current_time() + 10
    return {
        "benchmark": "mentions",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "users_in_room": args.users,
        "rounds": args.rounds,
        "post_ms": e2e,
        **local,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--users", type=int, default=50, help="members of the room")
    parser.add_argument("--rounds", type=int, default=200, help="posts per kind")
    parser.add_argument("--repeats", type=int, default=2000, help="in-process repeats")
    parser.add_argument("--timeout", type=float, default=600)
    parser.add_argument("--smoke", action="store_true", help="8 users, 5 rounds, 50 repeats")
    parser.add_argument("--json", default="mentions.json", help="JSON report path")
    args = parser.parse_args()
    if args.smoke:
        args.users, args.rounds, args.repeats = 8, 5, 50
    report = trio.run(run, args)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    post = report["post_ms"]
    print(
        f"postMessage median ms over {args.rounds} rounds, {args.users} members: "
        + ", ".join(f"{k} {post[k]['median']}" for k in KINDS if k in post)
        + f"; added by a mention: {post['added_median_ms']}; "
        f"find_mentions one {report['find_mentions_us']['one']['median']} us, "
        f"feed apply one {report['feed_apply_us']['one']['median']} us "
        f"(plain {report['feed_apply_us']['plain']['median']} us); failures {post['failures']}"
    )
    sys.exit(1 if post["failures"] else 0)


if __name__ == "__main__":
    main()
