"""Fault run: 3 NATS nodes + 2 Chatto processes under load, then kill -9s.

Starts a 3-node NATS cluster on loopback (stream and buckets with 3
replicas) and two ``chatto run`` processes with the same secrets, registers
``--users`` users (alternately on each process), and has each of them post
to #general through HTTP GraphQL, retrying on any error with a fresh body
(with ``--idempotent``: the same body and the same ``clientMessageId``, so
every message must be stored exactly once).
Meanwhile one ``myEvents`` follower per process reconnects and resumes by
paging whenever its process goes away, and /readyz of both processes is
sampled. Phases:

1. warm-up;
2. ``kill -9`` of Chatto process A, load fails over to B, A restarted;
3. ``kill -9`` of the NATS node leading the EVT stream, node restarted;
4. load stopped, the room history paged and compared with what was acked.

Prints the figures and writes them as JSON (``--out``). Every wait is
bounded; the run stops by itself. Exit status 1 if an acknowledged message
is missing or a message is stored twice.

    PYTHONPATH=. .venv/bin/python scripts/fault_cluster.py --out fault.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
import trio

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.clusterclient import Follower, Poster, check_history, history, user
from tests.natscluster import (
    ChattoProc,
    NatsCluster,
    cluster_config,
    stream_leader,
)
from tests.smtp_sink import SmtpSink

ROOM = "general"


class Run:
    """The state of one fault run and its report."""

    def __init__(
        self, base: Path, users: int, per_phase: int, timeout: float, idempotent: bool = False
    ) -> None:
        self.base = base
        self.idempotent = idempotent
        self.users = users
        self.per_phase = per_phase
        self.timeout = timeout
        self.cluster = NatsCluster.create(base / "nats")
        self.procs: list[ChattoProc] = []
        self.posters: list[Poster] = []
        self.phase = "start"
        self.phases: list[dict[str, Any]] = []
        self.readyz: dict[str, dict[str, int]] = {}
        self.t0 = 0.0

    def enter(self, name: str, **facts: Any) -> None:
        self.phase = name
        entry = {
            "phase": name,
            "at_s": round(trio.current_time() - self.t0, 2),
            "acked": sum(len(p.acked) for p in self.posters),
            "failed_attempts": sum(p.failed_attempts for p in self.posters),
            **facts,
        }
        self.phases.append(entry)
        print(f"[{entry['at_s']:7.2f}s] {name}: {json.dumps(facts | {'acked': entry['acked']})}")

    async def acked_more(self, n: int) -> bool:
        """Wait until every poster acked ``n`` more (False if the deadline passed)."""
        marks = [len(p.acked) for p in self.posters]
        with trio.move_on_after(self.timeout):
            while any(len(p.acked) < m + n for p, m in zip(self.posters, marks, strict=True)):
                await trio.sleep(0.05)
            return True
        print(f"  ! phase {self.phase}: posters did not reach +{n} within {self.timeout}s")
        return False

    async def sample_readyz(self) -> None:
        while True:
            for proc in self.procs:
                status, _ = await trio.to_thread.run_sync(proc.ready)
                counts = self.readyz.setdefault(f"{self.phase}:{proc.name}", {})
                counts[str(status)] = counts.get(str(status), 0) + 1
            await trio.sleep(0.25)

    async def post_forever(self, poster: Poster, stop: trio.Event) -> None:
        for i in range(100_000):
            if stop.is_set():
                return
            await poster.post_one(i)

    async def main(self) -> dict[str, Any]:
        self.t0 = trio.current_time()
        async with trio.open_nursery() as nursery:
            sink = SmtpSink()
            port = await nursery.start(sink.serve)
            await trio.to_thread.run_sync(self.cluster.start)
            shared = cluster_config(self.cluster, port)
            self.procs = [ChattoProc(n, shared, self.base / n) for n in ("a", "b")]
            for proc in self.procs:
                proc.start()
            for proc in self.procs:
                await trio.to_thread.run_sync(proc.wait_ready)
            a, b = self.procs
            tokens = []
            for i in range(self.users):
                proc = self.procs[i % 2]
                async with httpx.AsyncClient(base_url=proc.url, timeout=20) as c:
                    tokens.append((await user(c, sink, f"user{i}"))[1])
            urls = [[a.url, b.url], [b.url, a.url]]
            self.posters = [
                Poster(f"u{i}", t, ROOM, urls[i % 2], idempotent=self.idempotent)
                for i, t in enumerate(tokens)
            ]
            followers = [Follower(tokens[0], ROOM, urls[0]), Follower(tokens[1], ROOM, urls[1])]
            for f in followers:
                await nursery.start(f.serve)
            nursery.start_soon(self.sample_readyz)
            stop = trio.Event()
            async with trio.open_nursery() as load:
                for p in self.posters:
                    load.start_soon(self.post_forever, p, stop)
                await self.script(stop)
            self.enter("verify")
            async with httpx.AsyncClient(base_url=b.url, timeout=30) as c:
                stored = await history(c, tokens[1], ROOM)
            with trio.move_on_after(self.timeout):
                for f in followers:
                    while len(f.messages) < len(stored):
                        await trio.sleep(0.05)
            nursery.cancel_scope.cancel()
        figures: dict[str, Any] = dict(check_history(stored, self.posters))
        figures["idempotent"] = self.idempotent
        figures["followers"] = [
            {
                "process_first": f.urls[0],
                "reconnects": f.reconnects,
                "live": f.live_count,
                "seen": len(f.messages),
                "same_as_history": f.bodies() == [m["body"] for m in stored],
            }
            for f in followers
        ]
        figures["errors_by_kind"] = {}
        for p in self.posters:
            for kind, n in p.errors.items():
                figures["errors_by_kind"][kind] = figures["errors_by_kind"].get(kind, 0) + n
        return {"figures": figures, "phases": self.phases, "readyz": self.readyz}

    async def script(self, stop: trio.Event) -> None:
        a = self.procs[0]
        n = self.per_phase
        self.enter("warm-up")
        await self.acked_more(n)
        self.enter("kill -9 chatto a")
        await trio.to_thread.run_sync(a.kill)
        await self.acked_more(n)
        self.enter("restart chatto a")
        a.start()
        await trio.to_thread.run_sync(a.wait_ready)
        await self.acked_more(n)
        leader = stream_leader(self.cluster, "EVT")
        idx = leader if leader is not None else 0
        self.enter("kill -9 nats node", node=self.cluster.nodes[idx].name)
        await trio.to_thread.run_sync(self.cluster.kill, idx)
        await self.acked_more(n)
        self.enter("restart nats node", node=self.cluster.nodes[idx].name)
        await trio.to_thread.run_sync(self.cluster.restart, idx)
        await self.acked_more(n)
        self.enter("stop load")
        stop.set()

    def teardown(self) -> None:
        for proc in self.procs:
            proc.kill()
        self.cluster.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="fault.json", help="JSON report path")
    parser.add_argument("--users", type=int, default=4, help="posting users (>= 2)")
    parser.add_argument("--per-phase", type=int, default=15, help="posts per user per phase")
    parser.add_argument("--timeout", type=float, default=60.0, help="bound on each wait (s)")
    parser.add_argument("--keep", action="store_true", help="keep the temp dir (logs, stores)")
    parser.add_argument(
        "--idempotent",
        action="store_true",
        help="retry a failed post with the same body and clientMessageId (expect exactly once)",
    )
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="chatto-fault-"))
    run = Run(base, max(2, args.users), args.per_phase, args.timeout, args.idempotent)
    try:
        report = trio.run(run.main)
    finally:
        run.teardown()
        if not args.keep:
            import shutil

            shutil.rmtree(base, ignore_errors=True)
    f = report["figures"]
    print(json.dumps(f, indent=2, sort_keys=True))
    Path(args.out).write_text(json.dumps(report, indent=2, sort_keys=True))
    print(f"report written to {args.out}" + (f" (logs in {base})" if args.keep else ""))
    return 1 if f["acked_missing"] or f["duplicates"] or f["unattempted_present"] else 0


if __name__ == "__main__":
    sys.exit(main())
