"""Idempotent creation of the streams, KV buckets and object store.

Names follow DESIGN.md section 4: stream ``EVT`` (``evt.>``), KV buckets
``RUNTIME_STATE`` and ``ENCRYPTION_KEYS`` (file) and ``MEMORY_CACHE``
(memory), object stores ``OBJECTS`` (attachments, avatars) and ``SNAPSHOTS``
(projector snapshots; kept apart so backups, which dump ``OBJECTS``, never
carry them). Running it twice, or from several
processes at once, is harmless: existing resources are left as they are.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable

import nats.js.errors
import trio
from nats.js.api import (
    DiscardPolicy,
    ObjectStoreConfig,
    StorageType,
    StreamConfig,
)

from chatto.bus.bridge import NatsBridge
from chatto.bus.rebuild import move_if_undeletable
from chatto.errors import ChattoError, UnavailableError

log = logging.getLogger(__name__)

EVENT_STREAM = "EVT"
EVENT_SUBJECTS = "evt.>"
RUNTIME_STATE = "RUNTIME_STATE"
ENCRYPTION_KEYS = "ENCRYPTION_KEYS"
MEMORY_CACHE = "MEMORY_CACHE"
OBJECTS = "OBJECTS"
SNAPSHOTS = "SNAPSHOTS"
DEDUPE_WINDOW_SECONDS = 120.0
# The JetStream streams behind the names above (KV buckets and object stores
# are streams named with a prefix).
STREAMS = (
    EVENT_STREAM,
    f"KV_{RUNTIME_STATE}",
    f"KV_{ENCRYPTION_KEYS}",
    f"KV_{MEMORY_CACHE}",
    f"OBJ_{OBJECTS}",
    f"OBJ_{SNAPSHOTS}",
)


async def bootstrap_storage(bridge: NatsBridge, replicas: int = 1, attempts: int = 20) -> None:
    """Create every stream and bucket that does not exist yet.

    Retried a bounded number of times: on a NATS cluster, processes starting
    together race to create the same resources, and a resource created a
    moment ago may not answer yet while its replicas elect a leader.
    """
    for attempt in range(1, attempts + 1):
        try:
            await _bootstrap_once(bridge, replicas)
            for bucket in (RUNTIME_STATE, ENCRYPTION_KEYS):
                await move_if_undeletable(bridge, bucket, replicas)
            return
        except UnavailableError as exc:
            if attempt == attempts:
                raise
            log.info("storage bootstrap attempt %d failed (%s); retrying", attempt, exc.message)
            await trio.sleep(min(0.1 * attempt, 1.0))


async def _bootstrap_once(bridge: NatsBridge, replicas: int) -> None:
    js = bridge.js

    async def ensure_stream() -> None:
        try:
            info = await js.stream_info(EVENT_STREAM)
        except nats.js.errors.NotFoundError:
            pass
        else:
            if not info.config.allow_atomic:
                # Created by an older Chatto: multi-event decisions need
                # atomic batches. A server before 2.12 ignores the flag.
                info.config.allow_atomic = True
                await js.update_stream(info.config)
            return
        try:
            await js.add_stream(
                StreamConfig(
                    name=EVENT_STREAM,
                    subjects=[EVENT_SUBJECTS],
                    storage=StorageType.FILE,
                    max_age=0,
                    duplicate_window=DEDUPE_WINDOW_SECONDS,
                    num_replicas=replicas,
                    allow_atomic=True,
                )
            )
        except nats.js.errors.BadRequestError:
            # Another process created it between our look-up and add.
            await js.stream_info(EVENT_STREAM)

    async def ensure_kv(bucket: str, storage: StorageType) -> None:
        try:
            await js.stream_info(f"KV_{bucket}")
        except nats.js.errors.NotFoundError:
            await js.add_stream(kv_stream_config(bucket, storage, replicas))

    async def ensure_objects(bucket: str) -> None:
        try:
            await js.object_store(bucket)
        except nats.js.errors.BucketNotFoundError:
            await js.create_object_store(
                bucket, config=ObjectStoreConfig(storage=StorageType.FILE, replicas=replicas)
            )

    async def step(label: str, factory: Callable[[], Awaitable[None]]) -> None:
        try:
            await bridge.call(factory)
        except UnavailableError as exc:
            raise UnavailableError(f"{exc.message} ({label})") from exc

    await step(f"stream {EVENT_STREAM}", ensure_stream)
    await step(f"bucket {RUNTIME_STATE}", lambda: ensure_kv(RUNTIME_STATE, StorageType.FILE))
    await step(f"bucket {ENCRYPTION_KEYS}", lambda: ensure_kv(ENCRYPTION_KEYS, StorageType.FILE))
    await step(f"bucket {MEMORY_CACHE}", lambda: ensure_kv(MEMORY_CACHE, StorageType.MEMORY))
    await step(f"object store {OBJECTS}", lambda: ensure_objects(OBJECTS))
    await step(f"object store {SNAPSHOTS}", lambda: ensure_objects(SNAPSHOTS))

    async def led(stream: str) -> None:
        # A stream created a moment ago (by us or another process) answers
        # info from the meta layer before its replicas elected a leader;
        # reads and writes fail until then (NoStreamResponse), so wait here.
        info = await js.stream_info(stream)
        if info.cluster is not None and info.cluster.leader is None:
            raise UnavailableError("no leader elected yet")
        if stream == EVENT_STREAM:
            bridge.atomic_batches = bool(info.config.allow_atomic)

    for stream in STREAMS:
        await step(f"stream {stream}", functools.partial(led, stream))
    log.debug("storage bootstrap complete")


def kv_stream_config(bucket: str, storage: StorageType, replicas: int) -> StreamConfig:
    """A KV bucket's stream as nats-py makes it, except that it allows message deletes.

    nats-py's buckets deny them, and JetStream cannot lift that later; the
    secure deletes that shred key records (``kv_erase``) need them.
    """
    return StreamConfig(
        name=f"KV_{bucket}",
        subjects=[f"$KV.{bucket}.>"],
        # As nats-py made them: reads through the JetStream API, which
        # answers as soon as the server is up (direct gets answer "no
        # responders" until the stream is recovered after a restart).
        allow_direct=False,
        allow_rollup_hdrs=True,
        allow_msg_ttl=True,
        deny_delete=False,
        discard=DiscardPolicy.NEW,
        duplicate_window=DEDUPE_WINDOW_SECONDS,
        max_msgs_per_subject=1,
        max_consumers=-1,
        max_msgs=-1,
        num_replicas=replicas,
        storage=storage,
    )


async def keep_storage(
    bridge: NatsBridge,
    replicas: int = 1,
    interval: float = 1.0,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Re-create missing buckets after every reconnect.

    A restarted NATS keeps file-backed streams but loses memory-backed ones
    (``MEMORY_CACHE``): presence and rate-limit state start over, and the
    bucket itself must exist again before anyone writes to it.
    """
    task_status.started()
    seen = bridge.stats.reconnects
    while True:
        await trio.sleep(interval)
        if bridge.stats.reconnects != seen and bridge.connected:
            try:
                await bootstrap_storage(bridge, replicas)
                seen = bridge.stats.reconnects
                log.info("storage checked after reconnect")
            except ChattoError as exc:
                log.warning("storage check after reconnect failed (%s); retrying", exc.code)
