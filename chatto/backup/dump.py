"""Reading state out of NATS and writing it back, for backups and restores.

Exported: the ``EVT`` stream (every message, in order), the KV buckets
``RUNTIME_STATE`` (verifiers and wrapped DEKs; remaining TTLs kept) and,
only when asked, ``ENCRYPTION_KEYS``, and the ``OBJECTS`` store.
``MEMORY_CACHE`` (presence, rate limits) is never exported.
"""

from __future__ import annotations

import base64
import time
from typing import Any

import nats.js.errors

from chatto.backup.progress import Report as Progress
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import ENCRYPTION_KEYS, EVENT_STREAM, OBJECTS, RUNTIME_STATE
from chatto.errors import ChattoError


class RestoreConflict(ChattoError):
    """The target already holds data and the conflict mode says stop."""

    code = "RESTORE_CONFLICT"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _unb64(text: str) -> bytes:
    return base64.b64decode(text)


async def export_stream(bridge: NatsBridge, progress: Progress) -> list[dict[str, Any]]:
    js = bridge.js
    info = await bridge.call(lambda: js.stream_info(EVENT_STREAM))
    # The last sequence bounds the read; the message count is what it will
    # yield (sequences have gaps where events were erased or deleted).
    head, expected = int(info.state.last_seq), int(info.state.messages)
    out: list[dict[str, Any]] = []
    async for batch in bridge.read_range(EVENT_STREAM, "evt.>", 0, head):
        for m in batch:
            headers = _replayable(dict(m.headers)) or {}
            out.append({"subject": m.subject, "data": _b64(m.data), "headers": headers})
        progress.step(EVENT_STREAM, len(out), expected)
    progress.finish(EVENT_STREAM, len(out))
    return out


async def export_kv(bridge: NatsBridge, bucket: str, progress: Progress) -> list[dict[str, Any]]:
    keys = await bridge.kv_keys(bucket)
    js = bridge.js
    out: list[dict[str, Any]] = []
    for i, key in enumerate(sorted(keys), 1):

        async def get(k: str = key) -> Any:
            try:
                return await js.get_last_msg(f"KV_{bucket}", f"$KV.{bucket}.{k}")
            except nats.js.errors.NotFoundError:
                return None

        msg = await bridge.call(get)
        if msg is None or not msg.data:
            continue
        ttl = (msg.headers or {}).get("Nats-TTL")
        remaining = None
        if ttl:
            age = time.time() - msg.time.timestamp() if msg.time else 0
            remaining = int(float(str(ttl).rstrip("s")) - age)
            if remaining < 1:
                continue  # about to expire: not worth restoring
        out.append({"key": key, "value": _b64(msg.data), "ttl": remaining})
        progress.step(bucket, i, len(keys))
    progress.finish(bucket, len(out))
    return out


async def export_objects(bridge: NatsBridge, progress: Progress) -> list[dict[str, Any]]:
    js = bridge.js

    async def names() -> list[str]:
        store = await js.object_store(OBJECTS)
        try:
            return [o.name for o in await store.list() if not o.deleted]
        except nats.js.errors.NotFoundError:
            return []

    out = []
    listed = await bridge.call(names)
    for i, name in enumerate(listed, 1):
        data = await bridge.obj_get(OBJECTS, name)
        if data is not None:
            out.append({"name": name, "data": _b64(data)})
        progress.step(OBJECTS, i, len(listed))
    progress.finish(OBJECTS, len(out))
    return out


async def export_all(
    bridge: NatsBridge, include_keys: bool, progress: Progress
) -> dict[str, list[dict[str, Any]]]:
    members = {
        f"streams/{EVENT_STREAM}.jsonl": await export_stream(bridge, progress),
        f"kv/{RUNTIME_STATE}.jsonl": await export_kv(bridge, RUNTIME_STATE, progress),
        f"objects/{OBJECTS}.jsonl": await export_objects(bridge, progress),
    }
    if include_keys:
        members[f"kv/{ENCRYPTION_KEYS}.jsonl"] = await export_kv(bridge, ENCRYPTION_KEYS, progress)
    return members


async def check_target(bridge: NatsBridge, members: dict[str, Any], conflict: str) -> None:
    """Refuse (mode ``error``) before writing anything if the target has data."""
    if conflict != "error":
        return
    if await bridge.stream_last_seq(EVENT_STREAM) > 0 and members.get(
        f"streams/{EVENT_STREAM}.jsonl"
    ):
        raise RestoreConflict("the target already has events (use --conflict overwrite)")
    for name in members:
        if name.startswith("kv/"):
            bucket = name[3:-6]
            existing = set(await bridge.kv_keys(bucket))
            if existing & {r["key"] for r in members[name]}:
                raise RestoreConflict(
                    f"keys already exist in {bucket} (use --conflict skip|overwrite)"
                )


def _replayable(headers: dict[str, str] | None) -> dict[str, str] | None:
    """Stored headers minus the publish-time controls JetStream keeps with a message.

    Dropped when dumping and again when restoring (archives of older
    versions): the message id (dedupe), the append conditions, and the
    ``Nats-Batch-*`` headers of atomic batches, which re-published as they
    are would each open a batch that never commits.
    """
    kept = {
        k: v
        for k, v in (headers or {}).items()
        if k != "Nats-Msg-Id" and not k.startswith(("Nats-Batch-", "Nats-Expected-"))
    }
    return kept or None


async def import_all(
    bridge: NatsBridge, members: dict[str, list[dict[str, Any]]], conflict: str, progress: Progress
) -> None:
    await check_target(bridge, members, conflict)
    events = members.get(f"streams/{EVENT_STREAM}.jsonl", [])
    if events:
        if await bridge.stream_last_seq(EVENT_STREAM) > 0:
            if conflict == "skip":
                raise RestoreConflict("events cannot be merged into a stream that has events")
            js = bridge.js
            await bridge.call(lambda: js.purge_stream(EVENT_STREAM))
        for i, rec in enumerate(events, 1):
            await bridge.publish(
                rec["subject"], _unb64(rec["data"]), headers=_replayable(rec["headers"])
            )
            progress.step(EVENT_STREAM, i, len(events))
        progress.finish(EVENT_STREAM, len(events))
    for name, records in members.items():
        if name.startswith("kv/"):
            await import_kv(bridge, name[3:-6], records, conflict, progress)
    objects = members.get(f"objects/{OBJECTS}.jsonl", [])
    for i, rec in enumerate(objects, 1):
        await bridge.obj_put(OBJECTS, rec["name"], _unb64(rec["data"]))
        progress.step(OBJECTS, i, len(objects))
    if objects:
        progress.finish(OBJECTS, len(objects))


async def import_kv(
    bridge: NatsBridge,
    bucket: str,
    records: list[dict[str, Any]],
    conflict: str,
    progress: Progress,
) -> int:
    existing = set(await bridge.kv_keys(bucket)) if conflict != "overwrite" else set()
    written = 0
    for i, rec in enumerate(records, 1):
        if rec["key"] in existing:
            if conflict == "error":
                raise RestoreConflict(f"key already exists in {bucket}")
            continue
        await bridge.kv_put(bucket, rec["key"], _unb64(rec["value"]), ttl_seconds=rec.get("ttl"))
        written += 1
        progress.step(bucket, i, len(records))
    skipped = len(records) - written
    progress.finish(bucket, written, f"{skipped} already present" if skipped else "")
    return written
