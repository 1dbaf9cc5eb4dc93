"""Token-bucket rate limits shared by every process through NATS KV.

A bucket lives in ``MEMORY_CACHE`` under ``rl.<limit>.<HMAC(subject)>`` as
``{t: tokens, at: last refill}``; taking a token is a conditional update on
the key's revision, retried on a race, so two processes cannot double
anyone's budget. Keys expire once a bucket would be full again. Subjects
(account names, emails, IPs) are keyed hashes, never stored raw. The same
limit applies whether or not an account exists.
"""

from __future__ import annotations

import ipaddress
import json
import math
import time
from collections import OrderedDict

import attrs
import trio

from chatto.auth.keyring import Keyring
from chatto.bus.bridge import NatsBridge
from chatto.bus.buckets import KeyExistsError
from chatto.bus.storage import MEMORY_CACHE
from chatto.config import LimitsConfig, parse_rate
from chatto.errors import ChattoError, StaleWriteError


class RateLimited(ChattoError):
    """Too many requests: the client should wait ``retry_after`` seconds."""

    code = "RATE_LIMITED"
    http_status = 429

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@attrs.frozen
class Rate:
    capacity: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.capacity / self.seconds


class RateLimiter:
    """Named token buckets over NATS; ``hit`` takes tokens or raises ``RateLimited``."""

    def __init__(self, bridge: NatsBridge, keyring: Keyring, config: LimitsConfig) -> None:
        self._bridge = bridge
        self._keyring = keyring
        self.enabled = config.enabled
        self.rates: dict[str, Rate] = {}
        for f in attrs.fields(LimitsConfig):
            value = getattr(config, f.name)
            if isinstance(value, str):
                self.rates[f.name] = Rate(*parse_rate(f"limits.{f.name}", value))
        self.refused = 0
        self.refused_by: dict[str, int] = dict.fromkeys(self.rates, 0)  # by limit name
        self._empty: OrderedDict[str, float] = OrderedDict()
        self._locks: dict[str, trio.Lock] = {}

    async def hit(self, name: str, subject: str, cost: int = 1) -> None:
        if not self.enabled:
            return
        key = f"rl.{name}.{self._keyring.verifier('ratelimit:' + name, subject)[:40]}"
        # An exhausted bucket is refused locally until it can have refilled:
        # a flood costs no NATS round trips once it has used its budget.
        empty_until = self._empty.get(key)
        now = time.monotonic()
        if empty_until is not None and now < empty_until:
            self._refuse(name)
            raise RateLimited("too many requests; try again later", math.ceil(empty_until - now))
        # One NATS transaction per key at a time in this process, so
        # concurrent requests do not race each other's conditional updates.
        lock = self._locks.setdefault(key, trio.Lock())
        try:
            async with lock:
                await self._take(name, key, cost)
        finally:
            if not lock.statistics().tasks_waiting and not lock.locked():
                self._locks.pop(key, None)

    def _refuse(self, name: str) -> None:
        self.refused += 1
        self.refused_by[name] = self.refused_by.get(name, 0) + 1

    def _remember_empty(self, key: str, wait: float) -> None:
        self._empty[key] = time.monotonic() + wait
        self._empty.move_to_end(key)
        while len(self._empty) > 10_000:
            self._empty.popitem(last=False)

    async def _take(self, name: str, key: str, cost: int) -> None:
        rate = self.rates[name]
        ttl = max(1, math.ceil(rate.seconds))
        for _ in range(8):
            entry = await self._bridge.kv_get(MEMORY_CACHE, key)
            now = time.time()
            tokens, revision = float(rate.capacity), 0
            if entry is not None:
                doc = json.loads(entry.value)
                elapsed = max(0.0, now - float(doc["at"]))
                tokens = min(rate.capacity, float(doc["t"]) + elapsed * rate.per_second)
                revision = entry.revision
            if tokens < cost:
                self._refuse(name)
                need = (cost - tokens) / rate.per_second
                self._remember_empty(key, need)
                raise RateLimited("too many requests; try again later", max(1, math.ceil(need)))
            value = json.dumps({"t": tokens - cost, "at": now}).encode()
            try:
                if revision:
                    await self._bridge.kv_update(
                        MEMORY_CACHE, key, value, revision, ttl_seconds=ttl
                    )
                else:
                    await self._bridge.kv_create(MEMORY_CACHE, key, value, ttl_seconds=ttl)
                return
            except (StaleWriteError, KeyExistsError):
                continue  # another request (maybe another process) took a token first
        raise RateLimited("too many concurrent requests; try again", 1)


def is_trusted(addr: str, trusted: list[str]) -> bool:
    """Whether ``addr`` is in one of the ``trusted`` addresses or CIDR ranges."""
    try:
        ip = ipaddress.ip_address(addr)
    except ValueError:
        return False
    return any(ip in ipaddress.ip_network(t, strict=False) for t in trusted)


def client_ip(peer: str, forwarded_for: str | None, trusted: list[str]) -> str:
    """The client address: the socket peer, or X-Forwarded-For from a trusted proxy.

    With trusted proxies the chain is read from the right, skipping trusted
    hops, so a client cannot spoof its address by sending its own header.
    """
    if not forwarded_for or not is_trusted(peer, trusted):
        return peer
    for hop in reversed([h.strip() for h in forwarded_for.split(",") if h.strip()]):
        if not is_trusted(hop, trusted):
            return hop
    return peer
