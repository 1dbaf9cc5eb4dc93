"""Credential ends reaching open WebSockets, in every process on the NATS.

Owns the per-process registry of the credentials open sockets authenticated
with (``Credential``) and the ways one ends:

- revocation (revoke-token, logout, cookie logout, account deletion):
  ``SessionStore`` deletes the key and calls ``announce``, which ends this
  process's sockets at once and publishes the key on core NATS
  (``auth.ended``, flushed before the revoke answers), which every process
  subscribes to. A cookie rotation announces the successor instead: its
  sockets follow the new session;
- password change or reset, account deletion: the user's events reach this
  object as a read model in every process's projector;
- expiry by TTL: a socket knows its credential's deadline from the session
  record; one timer per process wakes at the earliest deadline and re-reads
  only the records that are due (a record refreshed meanwhile, by HTTP use,
  moves its deadline). An open socket does not itself extend its session.

Notices carry session keys (``session.<user>.<HMAC>``): they name a
credential without being one. Core NATS drops what is published while a
process is disconnected, so after a reconnect (or a dropped notice) every
tracked record is re-read, and every ``FULL_SWEEP_SECONDS`` anyway. A
notice that arrives between a socket's validation and its registration is
remembered for ``RECENT_SECONDS``.
"""

from __future__ import annotations

import heapq
import itertools
import json
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterator, Sequence
from contextlib import contextmanager

import attrs
import trio

from actors.events import Recorded
from actors.users.directory import UserDirectory
from actors.users.events import PasswordSet, UserDeletionStarted
from chatto.auth.session_cache import SessionCache
from chatto.bus.bridge import NatsBridge
from chatto.bus.reader import open_subscription
from chatto.errors import BusyError, UnavailableError

log = logging.getLogger(__name__)

SUBJECT = "auth.ended"
RECENT_SECONDS = 30.0
RECENT_MAX = 10_000
# The timer also wakes this often to notice a reconnect (a possible gap).
SWEEP_SECONDS = 1.0
# And re-reads every tracked record this often, whatever happened: bounds how
# long a notice lost without a disconnect here (a broken route inside a NATS
# cluster, a process that died between deleting a key and announcing it)
# keeps a socket open. One KV read per distinct key (~0.3 ms of CPU here).
FULL_SWEEP_SECONDS = 300.0
NOTICE_KEYS = 500  # keys per notice: far below NATS's 1 MB payload limit

ExpiryOf = Callable[[str], Awaitable[int | None]]


def _now_ms() -> int:
    return int(time.time() * 1000)


@attrs.define(eq=False)
class Credential:
    """The credential one WebSocket authenticated with, and whether it ended."""

    key: str
    user_id: str
    generation: int
    expires_ms: int
    ended: str = ""  # why, once it has ended
    _done: trio.Event = attrs.Factory(trio.Event)
    _closers: list[Callable[[], None]] = attrs.Factory(list)

    def end(self, reason: str) -> None:
        """Mark ended and run every ``closing`` callback (sync: any task may call it)."""
        if self.ended:
            return
        self.ended = reason
        self._done.set()
        for close in self._closers:
            close()

    @contextmanager
    def closing(self, close: Callable[[], None]) -> Iterator[None]:
        """Call ``close`` when the credential ends during the block (at once if it has).

        A live stream closes its channel this way: one callback per stream
        instead of a cancel scope around every wait of its hot loop.
        """
        if self.ended:
            close()
        self._closers.append(close)
        try:
            yield
        finally:
            self._closers.remove(close)

    async def wait_ended(self) -> None:
        await self._done.wait()


@attrs.frozen
class WatchStatistics:
    tracked: int
    ended: int
    expiry_checks: int
    notices: int
    sweeps: int


class CredentialWatch:
    """Per-process registry of live credentials; ends them on revoke, expiry or password change."""

    # A read model only for what happens while sockets are open: nothing to replay.
    replay_free = True

    def __init__(self, bridge: NatsBridge, directory: UserDirectory) -> None:
        self._bridge = bridge
        self._directory = directory
        self._by_key: dict[str, set[Credential]] = {}
        self._by_user: dict[str, set[Credential]] = {}
        self._deadlines: list[tuple[int, int, Credential]] = []
        self._order = itertools.count()
        self._recent: OrderedDict[str, tuple[float, str]] = OrderedDict()
        self._wake = trio.Event()
        self._sweep = False
        # Session caches (``chatto.auth.session_cache``) told of every end.
        self._caches: list[SessionCache] = []
        self._ended = self._expiry_checks = self._notices = self._sweeps = 0

    def follow_cache(self, cache: SessionCache) -> None:
        """Forget ended keys in ``cache``; clear it whenever a notice may have been lost."""
        self._caches.append(cache)

    def _gap(self) -> None:
        self._sweep = True
        for cache in self._caches:
            cache.clear()

    def statistics(self) -> WatchStatistics:
        tracked = sum(len(s) for s in self._by_key.values())
        return WatchStatistics(
            tracked, self._ended, self._expiry_checks, self._notices, self._sweeps
        )

    # --- registry -----------------------------------------------------------------
    @contextmanager
    def track(self, cred: Credential) -> Iterator[Credential]:
        """Watch ``cred`` for the block's duration (the socket's life)."""
        self._add(cred)
        try:
            yield cred
        finally:
            self._remove(cred)

    def _add(self, cred: Credential) -> None:
        self._by_key.setdefault(cred.key, set()).add(cred)
        self._by_user.setdefault(cred.user_id, set()).add(cred)
        self._schedule(cred)
        # What ended between the socket's validation and now.
        user = self._directory.get(cred.user_id)
        if user is None or user.generation != cred.generation:
            self._end(cred, "password changed or account deleted")
        recent = self._recent.get(cred.key)
        if recent is not None:
            self._follow(cred, recent[1])

    def _remove(self, cred: Credential) -> None:
        for index, name in ((self._by_key, cred.key), (self._by_user, cred.user_id)):
            members = index.get(name)
            if members is not None:
                members.discard(cred)
                if not members:
                    del index[name]

    def _tracked(self, cred: Credential) -> bool:
        return cred in self._by_key.get(cred.key, ())

    def _end(self, cred: Credential, reason: str) -> None:
        if not cred.ended:
            self._ended += 1
            cred.end(reason)

    def _schedule(self, cred: Credential) -> None:
        entry = (cred.expires_ms, next(self._order), cred)
        heapq.heappush(self._deadlines, entry)
        if self._deadlines[0] is entry:
            self._wake.set()

    def _follow(self, cred: Credential, successor: str) -> None:
        """The credential's key was revoked: end it, or move it to its successor."""
        if not successor:
            self._end(cred, "revoked")
            return
        self._remove(cred)
        cred.key, cred.expires_ms = successor, 0  # re-read the successor's deadline now
        self._by_key.setdefault(successor, set()).add(cred)
        self._by_user.setdefault(cred.user_id, set()).add(cred)
        self._schedule(cred)

    # --- ends ---------------------------------------------------------------------
    async def announce(self, keys: Sequence[str], successor: str = "") -> None:
        """Keys were deleted: end their sockets here now, and in every other process."""
        self.ended_keys(keys, successor)
        for i in range(0, len(keys), NOTICE_KEYS):
            doc = {"k": list(keys[i : i + NOTICE_KEYS]), "n": successor}
            await self._bridge.publish_core(SUBJECT, json.dumps(doc).encode(), flush=True)

    def ended_keys(self, keys: Sequence[str], successor: str = "") -> None:
        """Apply a notice (ours or another process's)."""
        now = trio.current_time()
        for cache in self._caches:
            cache.forget(keys)
        for key in keys:
            self._recent[key] = (now, successor)
            self._recent.move_to_end(key)
            for cred in list(self._by_key.get(key, ())):
                self._follow(cred, successor)
        while self._recent and (
            len(self._recent) > RECENT_MAX
            or next(iter(self._recent.values()))[0] < now - RECENT_SECONDS
        ):
            self._recent.popitem(last=False)

    def apply(self, rec: Recorded) -> None:
        """Password changes and deletions end every older credential of the user."""
        ev = rec.envelope.event
        if not isinstance(ev, PasswordSet | UserDeletionStarted):
            return
        for cred in list(self._by_user.get(rec.envelope.entity.id, ())):
            if isinstance(ev, UserDeletionStarted) or cred.generation != ev.auth_generation:
                self._end(cred, "password changed or account deleted")

    # --- tasks --------------------------------------------------------------------
    async def serve(
        self, expiry_of: ExpiryOf, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Follow notices from every process and the expiry deadlines; never returns."""
        async with trio.open_nursery() as nursery:
            await nursery.start(self._serve_notices)
            nursery.start_soon(self._serve_deadlines, expiry_of)
            task_status.started()

    async def _serve_notices(
        self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        started = False
        while True:
            try:
                async with open_subscription(self._bridge, SUBJECT, capacity=10_000) as sub:
                    if not started:
                        started = True
                        task_status.started()
                    async for batch in sub:
                        for _subject, data in batch:
                            self._on_notice(data)
            except BusyError:
                log.warning("credential notices fell behind; re-checking every open socket")
            # Notices may have been lost: re-read every tracked record.
            self._gap()
            self._wake.set()
            await trio.sleep(0.1)

    def _on_notice(self, data: bytes) -> None:
        try:
            doc = json.loads(data)
            keys, successor = [str(k) for k in doc["k"]], str(doc.get("n") or "")
        except (ValueError, KeyError, TypeError):
            log.debug("ignored a malformed credential notice")
            return
        self._notices += 1
        self.ended_keys(keys, successor)

    async def _serve_deadlines(self, expiry_of: ExpiryOf) -> None:
        disconnects = self._bridge.stats.disconnects
        full_sweep_at = trio.current_time() + FULL_SWEEP_SECONDS
        while True:
            wait = SWEEP_SECONDS
            if self._deadlines:
                wait = min(wait, max(0.0, (self._deadlines[0][0] - _now_ms()) / 1000))
            with trio.move_on_after(wait):
                await self._wake.wait()
            self._wake = trio.Event()
            if self._bridge.stats.disconnects != disconnects:
                disconnects = self._bridge.stats.disconnects
                self._gap()
            if trio.current_time() >= full_sweep_at:
                full_sweep_at, self._sweep = trio.current_time() + FULL_SWEEP_SECONDS, True
            if self._sweep:
                self._sweep = False
                self._sweeps += 1
                due = [c for creds in self._by_key.values() for c in creds]
            else:
                due = self._pop_due()
            try:
                await self._recheck(due, expiry_of)
            except UnavailableError:
                self._sweep = True  # NATS is away: try everything again next round

    def _pop_due(self) -> list[Credential]:
        now, due = _now_ms(), []
        while self._deadlines and self._deadlines[0][0] <= now:
            deadline, _n, cred = heapq.heappop(self._deadlines)
            # Entries are left behind by re-scheduling and closed sockets.
            if cred.expires_ms == deadline and not cred.ended and self._tracked(cred):
                due.append(cred)
        return due

    async def _recheck(self, creds: list[Credential], expiry_of: ExpiryOf) -> None:
        """Re-read each due key once: end its sockets, or move their deadline."""
        by_key: dict[str, list[Credential]] = {}
        for cred in creds:
            by_key.setdefault(cred.key, []).append(cred)
        for key, group in by_key.items():
            self._expiry_checks += 1
            expires = await expiry_of(key)
            now = _now_ms()
            for cred in group:
                if cred.ended or cred.key != key or not self._tracked(cred):
                    continue  # ended or moved while we waited for NATS
                if expires is None or expires <= now:
                    self._end(cred, "expired")
                elif expires != cred.expires_ms:
                    cred.expires_ms = expires
                    self._schedule(cred)
