"""What one load-test run does, from the command line."""

from __future__ import annotations

import argparse
import ipaddress
import socket
from pathlib import Path
from urllib.parse import urlsplit

import attrs


@attrs.frozen
class Params:
    """One run: the target, the population, the offered load and the outputs."""

    url: str = ""  # empty: start our own server(s) with embedded NATS
    processes: int = 1
    users: int = 500
    rooms: int = 20
    rate: float = 200.0  # posts per second, offered in total
    duration: float = 60.0
    messages: int = 0  # > 0: post exactly this many (at `rate`) instead of `duration`
    churn: float = 0.1  # share of users whose socket drops and reconnects
    churn_seconds: float = 10.0  # mean connected time of a churning socket
    in_flight: int = 200  # posts awaiting their answer, at most
    # What each client subscribes to: "full" is what a chat client needs (the
    # message with its body and author); "bare" is type and ids only.
    shape: str = "full"
    # How posts travel: "ws" on the poster's own live socket (what the web
    # client does; over HTTP again if the socket drops first), or "http".
    post_via: str = "ws"
    posters: int = 0  # > 0: only the first `posters` users post (hot-room shapes)
    p99_budget_ms: float = 100.0  # delivery p99 above this fails the run
    min_rate_share: float = 0.95  # achieved below this share of offered fails the run
    drain_seconds: float = 10.0
    out: Path = Path("bench-results/loadtest.json")
    chart: bool = False
    state: Path = Path("loadtest-state.json")
    password: str = "load test password"
    smtp_port: int = 0  # external server: where its SMTP points (our sink), for registration
    server_pid: int = 0  # external server on this machine: sample its CPU and RSS
    bcrypt_cost: int = 4  # own server only: setup speed, not on the messaging path
    allow_remote: bool = False
    quiet: bool = False

    @property
    def total_posts(self) -> int:
        return self.messages if self.messages > 0 else round(self.rate * self.duration)

    @property
    def offered_seconds(self) -> float:
        return self.total_posts / self.rate

    @property
    def deadline(self) -> float:
        """An upper bound for the whole run, setup included."""
        return 300.0 + self.users * 0.5 + self.offered_seconds + self.drain_seconds


# One hot room: everyone in it, a few heavy posters with several posts in flight.
HOT_ROOM = {"rooms": 1, "posters": 5, "in_flight": 20}

SMOKE = {
    "users": 20,
    "rooms": 4,
    "rate": 20.0,
    "duration": 3.0,
    "churn": 0.25,
    "churn_seconds": 1.0,
    "drain_seconds": 10.0,
    # CI checks correctness (every message delivered, full shape) on a shared,
    # noisy runner; latency figures come from real runs, not from CI.
    "p99_budget_ms": 10_000.0,
}


def is_loopback(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(i[4][0]).is_loopback for i in infos)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="chatto loadtest",
        description="Virtual users post and receive over real HTTP and WebSockets; "
        "reports latency, loss and server CPU/RSS.",
    )
    d = Params()
    p.add_argument("--url", default="", help="an already running server (default: start one)")
    p.add_argument("--processes", type=int, default=d.processes, help="own server processes")
    p.add_argument("--users", type=int, default=d.users)
    p.add_argument("--rooms", type=int, default=d.rooms)
    p.add_argument("--rate", type=float, default=d.rate, help="posts per second, in total")
    p.add_argument("--duration", type=float, default=d.duration, help="seconds of load")
    p.add_argument("--messages", type=int, default=0, help="post this many instead")
    p.add_argument("--churn", type=float, default=d.churn, help="share of users reconnecting")
    p.add_argument("--churn-seconds", type=float, default=d.churn_seconds)
    p.add_argument("--in-flight", type=int, default=d.in_flight)
    p.add_argument(
        "--shape",
        choices=["full", "bare"],
        default=d.shape,
        help="subscription: full = message body and author (default), bare = ids only",
    )
    p.add_argument(
        "--post-via",
        choices=["ws", "http"],
        default=d.post_via,
        help="posts on the poster's live socket, as the web client does (default), or over HTTP",
    )
    p.add_argument(
        "--hot-room",
        action="store_true",
        help="all users in one room, --posters heavy posters (default 5), in flight 20",
    )
    p.add_argument("--posters", type=int, default=None, help="only the first N users post")
    p.add_argument(
        "--p99-budget-ms",
        type=float,
        default=d.p99_budget_ms,
        help="fail when delivery p99 exceeds this (default %(default)s)",
    )
    p.add_argument("--drain-seconds", type=float, default=d.drain_seconds)
    p.add_argument("--out", type=Path, default=d.out, help="JSON report (.md next to it)")
    p.add_argument("--chart", action="store_true", help="also write a PNG (needs matplotlib)")
    p.add_argument("--state", type=Path, default=d.state, help="tokens reused with --url")
    p.add_argument("--password", default=d.password, help="virtual users' password")
    p.add_argument("--smtp-port", type=int, default=0, help="--url: run our SMTP sink here")
    p.add_argument("--server-pid", type=int, default=0, help="--url: sample this process")
    p.add_argument("--bcrypt-cost", type=int, default=d.bcrypt_cost)
    p.add_argument("--allow-remote", action="store_true", help="permit a non-loopback --url")
    p.add_argument("--smoke", action="store_true", help="a few seconds, for CI")
    p.add_argument("--quiet", action="store_true", help="no live progress lines")
    return p


def parse(argv: list[str] | None = None) -> Params:
    p = parser()
    args = vars(p.parse_args(argv))
    smoke, hot = args.pop("smoke"), args.pop("hot_room")
    explicit = {k for k, v in args.items() if v != p.get_default(k)}
    if hot:
        args |= {k: v for k, v in HOT_ROOM.items() if k not in explicit}
    if args["posters"] is None:
        args["posters"] = 0
    if smoke:
        args |= SMOKE
    params = Params(**{k: v for k, v in args.items()})
    problem = check(params)
    if problem:
        p.error(problem)
    return params


def check(p: Params) -> str:
    """Why these parameters cannot run (empty if they can)."""
    if not 1 <= p.rooms <= p.users:
        return "need 1 <= --rooms <= --users"
    if p.rate <= 0 or p.duration <= 0 or p.messages < 0:
        return "--rate and --duration must be positive"
    if not 0 <= p.churn <= 1 or p.churn_seconds <= 0:
        return "--churn must be within 0..1 and --churn-seconds positive"
    if p.posters < 0 or p.posters > p.users:
        return "--posters must be within 0..--users"
    if p.p99_budget_ms <= 0:
        return "--p99-budget-ms must be positive"
    if p.in_flight < 1 or p.processes < 1:
        return "--in-flight and --processes must be at least 1"
    if p.url and p.processes != 1:
        return "--processes starts our own servers; with --url give one URL"
    if p.url and not p.allow_remote and not is_loopback(p.url):
        return "--url is not a loopback address (pass --allow-remote to load it anyway)"
    return ""
