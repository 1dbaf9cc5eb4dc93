"""Moving an older Chatto's KV bucket into a stream that allows secure deletes.

Buckets made by nats-py deny message deletes, and JetStream refuses to lift
that on an existing stream, so key records in them could be marked deleted
but never overwritten. At start, such a bucket is moved, record by record
(values and remaining TTLs), through a holding bucket into a new stream of
the same name made by ``kv_stream_config``. Every step can be repeated, so a
crash anywhere is finished by the next start:

1. copy every record into ``<bucket>_MOVE`` and write ``MOVED_MARKER`` last;
2. delete the old stream (its files go with it);
3. create the new stream and copy the records back;
4. delete the holding bucket.

A holding bucket without the marker is an interrupted step 1 (the old stream
is intact): it is dropped and the move starts over. Run the first upgraded
process alone; processes of this version never move anything again.
"""

from __future__ import annotations

import logging

import nats.js.errors
from nats.js.api import StorageType

from chatto.bus.bridge import NatsBridge

log = logging.getLogger(__name__)

MOVED_MARKER = "_chatto_move_complete"


async def _deny_delete(bridge: NatsBridge, stream: str) -> bool | None:
    """Whether ``stream`` denies deletes; None if there is no such stream."""
    js = bridge.js

    async def info() -> bool | None:
        try:
            return bool((await js.stream_info(stream)).config.deny_delete)
        except nats.js.errors.NotFoundError:
            return None

    return await bridge.call(info)


async def _drop(bridge: NatsBridge, stream: str) -> None:
    js = bridge.js

    async def delete() -> None:
        try:
            await js.delete_stream(stream)
        except nats.js.errors.NotFoundError:
            return

    await bridge.call(delete)


async def _create(bridge: NatsBridge, bucket: str, replicas: int) -> None:
    from chatto.bus.storage import kv_stream_config  # local: storage imports this module

    js = bridge.js
    config = kv_stream_config(bucket, StorageType.FILE, replicas)
    await bridge.call(lambda: js.add_stream(config))


async def _copy(bridge: NatsBridge, source: str, target: str) -> int:
    from chatto.backup.dump import export_kv, import_kv  # local: backup imports the bus
    from chatto.backup.progress import Silent

    quiet = Silent()
    records = [r for r in await export_kv(bridge, source, quiet) if r["key"] != MOVED_MARKER]
    return await import_kv(bridge, target, records, "overwrite", quiet)


async def move_if_undeletable(bridge: NatsBridge, bucket: str, replicas: int) -> bool:
    """Move ``bucket`` if it denies deletes or a move was interrupted; True if moved."""
    holding = f"{bucket}_MOVE"
    moving = await _deny_delete(bridge, f"KV_{holding}") is not None
    copied = moving and await bridge.kv_get(holding, MOVED_MARKER) is not None
    if not moving and not await _deny_delete(bridge, f"KV_{bucket}"):
        return False
    log.warning(
        "moving bucket %s into a stream that allows secure deletes (made by an older "
        "version; done once)",
        bucket,
    )
    if not copied:
        await _drop(bridge, f"KV_{holding}")  # an interrupted copy: start over
        await _create(bridge, holding, replicas)
        count = await _copy(bridge, bucket, holding)
        await bridge.kv_put(holding, MOVED_MARKER, str(count).encode())
    await _drop(bridge, f"KV_{bucket}")
    await _create(bridge, bucket, replicas)
    count = await _copy(bridge, holding, bucket)
    await _drop(bridge, f"KV_{holding}")
    log.warning("bucket %s moved (%d records)", bucket, count)
    return True
