"""Credential records in ``RUNTIME_STATE``: JSON values under HMAC keys.

A small typed layer over the bridge's KV calls: get a record with its
revision, put with a TTL, consume exactly once (a conditional overwrite
decides the single winner, then the key is deleted).
"""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import RUNTIME_STATE
from chatto.errors import StaleWriteError


class RecordStore:
    """JSON records in RUNTIME_STATE."""

    def __init__(self, bridge: NatsBridge) -> None:
        self._bridge = bridge
        # Calls per operation: tests compare the work two answers cost, so
        # an oracle in timing shows up as a count, not a flaky clock.
        self._calls: Counter[str] = Counter()

    def statistics(self) -> dict[str, int]:
        return dict(self._calls)

    async def get(self, key: str) -> tuple[dict[str, Any], int] | None:
        self._calls["get"] += 1
        entry = await self._bridge.kv_get(RUNTIME_STATE, key)
        if entry is None or not entry.value:
            return None
        try:
            doc = json.loads(entry.value)
        except ValueError:
            return None
        return (doc, entry.revision) if isinstance(doc, dict) else None

    async def put(self, key: str, doc: dict[str, Any], ttl_seconds: int | None) -> int:
        self._calls["put"] += 1
        return await self._bridge.kv_put(RUNTIME_STATE, key, _dump(doc), ttl_seconds=ttl_seconds)

    async def create(self, key: str, doc: dict[str, Any], ttl_seconds: int | None = None) -> int:
        """Create only if absent (``KeyExistsError`` otherwise)."""
        self._calls["create"] += 1
        return await self._bridge.kv_create(RUNTIME_STATE, key, _dump(doc), ttl_seconds=ttl_seconds)

    async def update(
        self, key: str, doc: dict[str, Any], revision: int, ttl_seconds: int | None
    ) -> int:
        """Overwrite only if unchanged since ``revision`` (``StaleWriteError``)."""
        self._calls["update"] += 1
        return await self._bridge.kv_update(
            RUNTIME_STATE, key, _dump(doc), revision, ttl_seconds=ttl_seconds
        )

    async def keys(self, prefix: str) -> list[str]:
        """Live keys under ``prefix`` (ending in ``.``), filtered by the server."""
        return await self._bridge.kv_keys(RUNTIME_STATE, prefix)

    async def delete(self, key: str) -> None:
        self._calls["delete"] += 1
        await self._bridge.kv_delete(RUNTIME_STATE, key)

    async def consume(self, key: str) -> dict[str, Any] | None:
        """Return the record and remove it; of concurrent callers only one gets it."""
        found = await self.get(key)
        if found is None:
            return None
        doc, revision = found
        self._calls["update"] += 1
        try:
            await self._bridge.kv_update(RUNTIME_STATE, key, b"", revision, ttl_seconds=60)
        except StaleWriteError:
            return None
        await self.delete(key)
        return doc


def _dump(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()
