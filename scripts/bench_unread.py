"""Benchmark: unread counts for one user over many rooms, from the read model.

Builds a ``RoomDirectory`` in-process (no NATS, no HTTP) by applying the
same events the projector applies: R rooms of M top-level messages each,
written by 20 authors of whom one is the viewer (1 in 20 of the messages are
the viewer's own), 1 in 50 retracted, and a read marker for the viewer at a
random point of each room. 1 in 20 messages mention the viewer and 1 in
200 say @room (projected into the notification read model's
``MentionIndex`` too). Then it times what ``Query.unread`` does after
the marker reads (one KV get per room, not measured here: a NATS round trip):
``count_unread`` for every room, the viewer's whole sidebar at once, with
mention counts (``mention_count_us``: the mention part alone).

Reported (medians over the repeats): one room's count, the whole pass over
R rooms, and rebuilding the unread index from a snapshot's rows (what a
restore adds). Every count (unread and mentions) is checked against a
naive count over the messages (exit 1 on a mismatch).
Run: ``.venv/bin/python scripts/bench_unread.py`` (``--smoke`` for CI).
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from actors.events import EntityRef, Envelope, Event, Recorded
from actors.notifications.feed import NotificationFeed
from actors.rooms.directory import RoomDirectory
from actors.rooms.events import (
    MemberJoined,
    MessagePosted,
    MessageRetracted,
    RoomCreated,
)
from actors.rooms.unread import UnreadIndex
from chatto.messaging.unread import Unread, count_unread

VIEWER = "viewer"
AUTHORS = [VIEWER, *(f"author{i}" for i in range(19))]


class Builder:
    """Applies events with increasing sequence numbers, as the projector would."""

    def __init__(self) -> None:
        self.rooms = RoomDirectory(hot_messages=0)  # every view in memory: the naive count's input
        self.feed = NotificationFeed(self.rooms)
        self.seq = 0

    def apply(self, room_id: str, event: Event, event_id: str = "") -> None:
        self.seq += 1
        env = Envelope(event_id or f"e{self.seq}", EntityRef("room", room_id), 0, event)
        rec = Recorded(self.seq, env)
        self.rooms.apply(rec)
        self.feed.apply(rec)


def _posted(rng: random.Random) -> MessagePosted:
    author = rng.choice(AUTHORS)
    roll = rng.randrange(200)
    if roll == 0:
        return MessagePosted(author, "sealed", 1, mention_room=True)
    if roll < 10 and author != VIEWER:
        return MessagePosted(author, "sealed", 1, mentions=(VIEWER,))
    return MessagePosted(author, "sealed", 1)


def build(
    n_rooms: int, n_messages: int, rng: random.Random
) -> tuple[RoomDirectory, NotificationFeed, dict[str, int]]:
    """The read models and the viewer's marker sequence per room."""
    b = Builder()
    markers = {}
    for r in range(n_rooms):
        room_id = f"room{r}"
        b.apply(room_id, RoomCreated(room_id, "", "channel", VIEWER))
        b.apply(room_id, MemberJoined(VIEWER))
        ids = []
        for m in range(n_messages):
            event_id = f"{room_id}.m{m}"
            b.apply(room_id, _posted(rng), event_id)
            ids.append(event_id)
        for event_id in rng.sample(ids, n_messages // 50):
            author = b.rooms.messages[event_id].author_id
            b.apply(room_id, MessageRetracted(event_id, author, author))
        marked = rng.randrange(n_messages)
        markers[room_id] = b.rooms.messages[ids[marked]].seq
    return b.rooms, b.feed, markers


def naive(rooms: RoomDirectory, feed: NotificationFeed, room_id: str, marker: int) -> Unread:
    """Counted message by message (the mention part from the stored mentions)."""
    room = rooms.rooms[room_id]
    msgs = (room.hot[s] for s in room.timeline.seqs)
    count = mentions = 0
    for m in msgs:
        if m.seq > marker and not m.retracted and m.author_id != VIEWER:
            count += 1
            users, everyone = feed.mentions_of(room_id, m.seq)
            mentions += everyone or VIEWER in users
    return Unread(count, mentions)


def _stats(samples: list[float], scale: float) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "n": len(samples),
        "median": round(statistics.median(samples) * scale, 3),
        "p90": round(ordered[int(len(ordered) * 0.9) - 1 if len(ordered) > 1 else 0] * scale, 3),
    }


def bench(args: argparse.Namespace) -> dict[str, Any]:
    rng = random.Random(args.seed)
    started = time.perf_counter()
    rooms, feed, markers = build(args.rooms, args.messages, rng)
    build_s = time.perf_counter() - started

    wrong = [
        r
        for r, m in markers.items()
        if count_unread(rooms.rooms[r], VIEWER, m, feed) != naive(rooms, feed, r, m)
    ]

    one_room: list[float] = []
    sidebar: list[float] = []
    mention_part: list[float] = []
    total = mentions = 0
    for _ in range(args.repeats):
        t0 = time.perf_counter()
        total = mentions = 0
        for room_id, marker in markers.items():
            t1 = time.perf_counter()
            state = count_unread(rooms.rooms[room_id], VIEWER, marker, feed)
            one_room.append(time.perf_counter() - t1)
            total += state.count
            mentions += state.mentions
        sidebar.append(time.perf_counter() - t0)
        t2 = time.perf_counter()
        for room_id, marker in markers.items():
            feed.mention_count(room_id, VIEWER, marker)
        mention_part.append((time.perf_counter() - t2) / len(markers))

    rebuild: list[float] = []
    for _ in range(max(1, args.repeats // 10)):
        t0 = time.perf_counter()
        for room in rooms.rooms.values():
            rows = (room.hot[s] for s in room.timeline.seqs)
            UnreadIndex.rebuild((m.seq, m.author_id, m.retracted) for m in rows)
        rebuild.append(time.perf_counter() - t0)

    return {
        "benchmark": "unread",
        "python": platform.python_version(),
        "machine": platform.machine(),
        "rooms": args.rooms,
        "messages_per_room": args.messages,
        "repeats": args.repeats,
        "build_seconds": round(build_s, 2),
        "viewer_unread_total": total,
        "viewer_mention_total": mentions,
        "mismatches": len(wrong),
        "one_room_count_us": _stats(one_room, 1e6),
        "all_rooms_count_ms": _stats(sidebar, 1e3),
        "mention_count_us": _stats(mention_part, 1e6),
        "index_rebuild_all_rooms_ms": _stats(rebuild, 1e3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rooms", type=int, default=500)
    parser.add_argument("--messages", type=int, default=1000, help="messages per room")
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--seed", type=int, default=19)
    parser.add_argument("--smoke", action="store_true", help="20 rooms x 100 messages, 5 repeats")
    parser.add_argument("--json", default="unread.json", help="JSON report path")
    args = parser.parse_args()
    if args.smoke:
        args.rooms, args.messages, args.repeats = 20, 100, 5
    report = bench(args)
    Path(args.json).write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"{args.rooms} rooms x {args.messages} messages: one room's count "
        f"{report['one_room_count_us']['median']} us (median), all rooms "
        f"{report['all_rooms_count_ms']['median']} ms (median), index rebuild "
        f"{report['index_rebuild_all_rooms_ms']['median']} ms; "
        f"total unread {report['viewer_unread_total']} (mentions "
        f"{report['viewer_mention_total']}, {report['mention_count_us']['median']} us a room), "
        f"mismatches {report['mismatches']}"
    )
    sys.exit(1 if report["mismatches"] else 0)


if __name__ == "__main__":
    main()
