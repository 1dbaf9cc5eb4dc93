"""KV and object-store operations of ``NatsBridge`` (a mixin, split off for size).

Each costs one round trip through the portal; handles are cached on the loop
thread. KV writes are JetStream publishes (``NatsBridge.publish``), so they
get its conditional-append and no-responders handling.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs
import nats.js.errors
import trio

from chatto.errors import ConflictError, StaleWriteError

if TYPE_CHECKING:
    from nats.aio.client import Client as NatsClient
    from nats.js import JetStreamContext

T = TypeVar("T")

# A KV key has one revision (history 1); a few more can exist for a moment
# while a write races an erase.
MAX_KV_REVISIONS = 16
SEQUENCE_NOT_FOUND = 10043


class KeyExistsError(ConflictError):
    """A KV create found the key already present."""

    code = "KEY_EXISTS"


@attrs.frozen
class KvEntry:
    """A KV value with its revision (the stream sequence of the put)."""

    key: str
    value: bytes
    revision: int


class BucketOps:
    """KV and object-store methods; the connection parts come from ``NatsBridge``."""

    _kv_handles: dict[str, Any]
    _obj_handles: dict[str, Any]

    if TYPE_CHECKING:

        @property
        def js(self) -> JetStreamContext: ...

        @property
        def nc(self) -> NatsClient: ...

        async def call(self, factory: Callable[[], Awaitable[T]]) -> T: ...

        # ``NatsBridge.publish`` (conditional, TTL, re-tried while no stream answers).
        publish: Callable[..., Awaitable[int]]

    # --- KV -----------------------------------------------------------------
    async def _kv(self, bucket: str) -> Any:
        """KeyValue handle (loop thread only)."""
        kv = self._kv_handles.get(bucket)
        if kv is None:
            kv = self._kv_handles[bucket] = await self.js.key_value(bucket)
        return kv

    async def _obj(self, bucket: str) -> Any:
        """ObjectStore handle (loop thread only)."""
        store = self._obj_handles.get(bucket)
        if store is None:
            store = self._obj_handles[bucket] = await self.js.object_store(bucket)
        return store

    async def kv_get(self, bucket: str, key: str) -> KvEntry | None:
        """Current value of ``key`` or None (absent, deleted or expired)."""

        async def get() -> KvEntry | None:
            kv = await self._kv(bucket)
            try:
                e = await kv.get(key)
            except nats.js.errors.KeyNotFoundError:
                return None
            if e.value is None:
                return None
            return KvEntry(key=key, value=e.value, revision=int(e.revision or 0))

        return await self.call(get)

    async def kv_put(
        self, bucket: str, key: str, value: bytes, *, ttl_seconds: int | None = None
    ) -> int:
        """Write ``key``; with ``ttl_seconds`` the server expires it (whole seconds)."""
        if ttl_seconds is not None and ttl_seconds < 1:
            raise ValueError("KV TTL must be at least one whole second")
        return await self.publish(f"$KV.{bucket}.{key}", value, ttl_seconds=ttl_seconds)

    async def kv_create(
        self, bucket: str, key: str, value: bytes, *, ttl_seconds: int | None = None
    ) -> int:
        """Write ``key`` only if absent; ``KeyExistsError`` otherwise."""
        subject = f"$KV.{bucket}.{key}"
        try:
            return await self.publish(subject, value, expect_last_seq=0, ttl_seconds=ttl_seconds)
        except StaleWriteError as exc:
            # A delete leaves a marker as the subject's last message; a key whose
            # last entry is a marker counts as absent.
            marker = await self._marker_seq(f"KV_{bucket}", subject)
            if marker is None:
                raise KeyExistsError(f"key exists in {bucket}") from exc
        try:
            return await self.publish(
                subject, value, expect_last_seq=marker, ttl_seconds=ttl_seconds
            )
        except StaleWriteError as exc:
            raise KeyExistsError(f"key exists in {bucket}") from exc

    async def kv_update(
        self,
        bucket: str,
        key: str,
        value: bytes,
        last_revision: int,
        *,
        ttl_seconds: int | None = None,
    ) -> int:
        """Write ``key`` only if its revision is still ``last_revision``.

        ``StaleWriteError`` if someone else wrote (or deleted) it first.
        """
        return await self.publish(
            f"$KV.{bucket}.{key}", value, expect_last_seq=last_revision, ttl_seconds=ttl_seconds
        )

    async def _marker_seq(self, stream: str, subject: str) -> int | None:
        js = self.js

        async def get() -> int | None:
            try:
                msg = await js.get_last_msg(stream, subject)
            except nats.js.errors.NotFoundError:
                return 0
            op = (msg.headers or {}).get("KV-Operation")
            return int(msg.seq or 0) if op in ("DEL", "PURGE") else None

        return await self.call(get)

    async def kv_delete(self, bucket: str, key: str) -> None:
        """Remove ``key`` (its history too: the bucket keeps one revision)."""

        async def purge() -> None:
            kv = await self._kv(bucket)
            await kv.purge(key)

        await self.call(purge)

    async def kv_erase(self, bucket: str, key: str) -> int:
        """Destroy every stored revision of ``key``; returns how many were erased.

        A KV delete or purge only marks records: their bytes stay in the
        stream's block files. This overwrites each stored message (JetStream's
        secure delete), so a copy of the disk holds nothing of it.
        """
        stream, subject = f"KV_{bucket}", f"$KV.{bucket}.{key}"
        js = self.js
        return await self.call(lambda: _erase_subject(js, stream, subject, MAX_KV_REVISIONS))

    async def kv_keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Live keys of a bucket, all or those under ``prefix`` (``"session.u1."``).

        A prefix (ending in ``.``) is filtered by the server, so the work
        follows the keys asked for, not the bucket's size.

        Read with a ``PullReader`` (last value per key, headers only) rather
        than nats-py's ``keys()``, whose watcher can drop keys when it falls
        behind: a key missed here would be a session a deletion never revoked.
        """
        from chatto.bus.pull import PullReader  # local: pull imports this package

        if prefix and not prefix.endswith("."):
            raise ValueError("a key prefix ends with '.'")
        subject_prefix = f"$KV.{bucket}."
        reader = PullReader(
            self.nc,
            self.js,
            f"KV_{bucket}",
            subject_prefix + prefix + ">",
            1,
            4096,
            last_per_subject=True,
            headers_only=True,
        )
        await self.call(reader.open)
        keys: list[str] = []
        try:
            more = reader.pending_at_start > 0
            while more:
                batch = await self.call(lambda: reader.take(4096))
                keys += [
                    m.subject.removeprefix(subject_prefix)
                    for m in batch
                    if m.headers.get("KV-Operation") not in ("DEL", "PURGE")
                ]
                more = batch[-1].pending > 0
        finally:
            with trio.move_on_after(2, shield=True):
                await self.call(reader.close)
        return keys

    # --- object store ------------------------------------------------------
    async def obj_put(self, bucket: str, name: str, data: bytes) -> None:

        async def put() -> None:
            store = await self._obj(bucket)
            await store.put(name, data)

        await self.call(put)

    async def obj_delete(self, bucket: str, name: str) -> None:
        """Remove an object (no error if it is already gone)."""

        async def delete() -> None:
            store = await self._obj(bucket)
            try:
                await store.delete(name)
            except nats.js.errors.ObjectNotFoundError:
                return

        await self.call(delete)

    async def obj_erase(self, bucket: str, name: str) -> None:
        """Remove an object and overwrite its chunks on disk (secure delete).

        An object-store delete purges the chunks, which only marks them; the
        chunks are erased one by one first. No error if the object is gone.
        """
        js = self.js

        async def erase() -> None:
            store = await self._obj(bucket)
            if await erase_object_chunks(js, store, bucket, name):
                with contextlib.suppress(nats.js.errors.ObjectNotFoundError):
                    await store.delete(name)

        await self.call(erase)

    async def obj_get(self, bucket: str, name: str) -> bytes | None:

        async def get() -> bytes | None:
            store = await self._obj(bucket)
            try:
                res = await store.get(name)
            except nats.js.errors.ObjectNotFoundError:
                return None
            return bytes(res.data or b"")

        return await self.call(get)


async def erase_object_chunks(js: JetStreamContext, store: Any, bucket: str, name: str) -> bool:
    """Loop-thread: overwrite the chunks of object ``name``; False if there is none.

    Object-store deletes and replacements only purge chunks (marked, still on
    disk), so whatever must not survive is erased first.
    """
    try:
        info = await store.get_info(name)
    except nats.js.errors.ObjectNotFoundError:
        return False
    chunks = f"$O.{bucket}.C.{info.nuid}"
    await _erase_subject(js, f"OBJ_{bucket}", chunks, int(info.chunks or 0) + 2)
    return True


async def _erase_subject(js: JetStreamContext, stream: str, subject: str, bound: int) -> int:
    """Loop-thread half of the secure deletes: erase the subject's messages, newest first."""
    for erased in range(bound):
        try:
            msg = await js.get_last_msg(stream, subject)
        except nats.js.errors.NotFoundError:
            return erased
        try:
            # nats-py asks without no_erase: the server overwrites the bytes.
            await js.delete_msg(stream, int(msg.seq or 0))
        except nats.js.errors.NotFoundError:
            pass
        except nats.js.errors.APIError as exc:
            # A concurrent eraser took it first: "sequence not found", or the
            # generic delete failure (10057) saying "no message found".
            gone = exc.err_code == SEQUENCE_NOT_FOUND or "no message found" in (
                exc.description or ""
            )
            if not gone:
                raise
    raise nats.js.errors.APIError(description=f"more than {bound} messages on {subject}")
