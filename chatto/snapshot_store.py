"""Projector snapshots in NATS: the ``SNAPSHOTS`` object store (implements
``actors.snapshot.SnapshotStore``).

One object per name (``projector``); a put replaces it atomically for
readers (nats-py writes the chunks under a fresh id, then the meta message
with a rollup, then purges the old chunks), so two processes writing at
once leave one complete snapshot: the last writer's. A reader that races a
purge sees a digest mismatch and falls back to a full replay.
"""

from __future__ import annotations

import asyncio
import io

import nats.js.errors

from actors.snapshot import SnapshotError
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM, SNAPSHOTS
from chatto.codec import CodecError, decode_envelope

SNAPSHOT_NAME = "projector"
# A read whose chunks a concurrent writer purged would wait forever: bound it
# by the object's size (generously: a few MB/s).
LOAD_BASE_SECONDS = 10.0
LOAD_BYTES_PER_SECOND = 4 * 1024 * 1024


class NatsSnapshotStore:
    """The projector's snapshot object, and look-ups into ``EVT`` to validate it."""

    def __init__(self, bridge: NatsBridge, name: str = SNAPSHOT_NAME) -> None:
        self._bridge = bridge
        self._name = name

    async def load(self) -> bytes | None:
        js, name = self._bridge.js, self._name

        async def get() -> bytes | None:
            store = await js.object_store(SNAPSHOTS)
            # writeinto: nats-py otherwise grows one bytes object chunk by
            # chunk, which is quadratic for a snapshot of many megabytes.
            out = io.BytesIO()
            try:
                info = await store.get_info(name)
                within = LOAD_BASE_SECONDS + (info.size or 0) / LOAD_BYTES_PER_SECOND
                await asyncio.wait_for(store.get(name, writeinto=out), within)
            except nats.js.errors.ObjectNotFoundError:
                return None
            except (
                nats.js.errors.DigestMismatchError,
                nats.js.errors.BadObjectMetaError,
                TimeoutError,
            ) as exc:
                raise SnapshotError(f"unreadable object ({type(exc).__name__})") from exc
            return out.getvalue()

        return await self._bridge.call(get)

    async def save(self, data: bytes) -> None:
        await self._bridge.obj_put(SNAPSHOTS, self._name, data)

    async def delete(self) -> None:
        """Remove the stored snapshot (tests, and operators via the bridge)."""
        await self._bridge.obj_delete(SNAPSHOTS, self._name)

    async def log_bounds(self) -> tuple[int, int]:
        js = self._bridge.js
        info = await self._bridge.call(lambda: js.stream_info(EVENT_STREAM))
        return int(info.state.first_seq), int(info.state.last_seq)

    async def event_id_at(self, seq: int) -> str | None:
        if seq < 1:
            return None
        js = self._bridge.js

        async def get() -> bytes | None:
            try:
                msg = await js.get_msg(EVENT_STREAM, seq)
            except nats.js.errors.NotFoundError:
                return None
            return bytes(msg.data or b"")

        data = await self._bridge.call(get)
        if not data:
            return None
        try:
            # Decoded rather than read from Nats-Msg-Id: restored backups drop it.
            return decode_envelope(data).id
        except CodecError:
            return None
