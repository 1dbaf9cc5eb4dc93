"""Projector snapshots: the read models' state at one stream sequence.

A snapshot lets a start skip the replay of everything up to its sequence.
It is bytes in three parts::

    b"chatto-snapshot\\n" + header JSON + b"\\n" + zlib(body JSON)

The header carries the format version, the sequence covered, the id of the
event at that sequence (the anchor that proves the snapshot belongs to this
very stream, not to a purged, recreated or restored one), each model's
schema version and the SHA-256 of the body. The body maps model names to
their exported state: plain JSON values with sets sorted and dicts written
with sorted keys, so equal state gives equal bytes.

Models hold no serialization of their own elsewhere: ``export_state`` /
``restore_state`` are the whole contract. A model that keeps nothing from
history (it only reacts to events) sets ``replay_free = True`` instead.
"""

from __future__ import annotations

import gc
import hashlib
import json
import zlib
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any, Protocol, runtime_checkable

import attrs

from actors.events import Recorded
from actors.rooms.events import MemberDeleted, MessageRetracted
from actors.users.events import UserDeleted
from chatto.errors import ChattoError

FORMAT_VERSION = 1
MAGIC = b"chatto-snapshot\n"
# Large collections are encoded this many entries at a time, so the worker
# thread that encodes gives the GIL back to the event loop between slices.
SLICE = 2000
# Events after which an older snapshot may still hold data the log no longer
# has (sealed bodies of erased messages): the next snapshot is written soon.
ERASING = (MessageRetracted, MemberDeleted, UserDeleted)


class SnapshotError(Exception):
    """A stored snapshot cannot be used (corrupt, other version, other stream)."""


# What restoring a stored snapshot (or checkpoint) can raise when it does not
# fit this state or this log: one log line and a full replay, never a crash.
RESTORE_ERRORS = (
    SnapshotError,
    ChattoError,
    ValueError,
    KeyError,
    TypeError,
    IndexError,
    AttributeError,
)


def unusable_reason(exc: Exception) -> str:
    """The log wording for one of ``RESTORE_ERRORS``."""
    return exc.message if isinstance(exc, ChattoError) else str(exc)


@runtime_checkable
class Snapshottable(Protocol):
    """A read model that can export its state and be restored from it."""

    snapshot_name: str
    snapshot_schema: int

    def export_state(self) -> Any:
        """JSON-able state in fresh containers (nothing shared with live state)."""
        ...

    async def restore_state(self, state: Any) -> None:
        """Replace all state with ``state`` (a value ``export_state`` returned)."""
        ...


class SnapshotStore(Protocol):
    """Where the snapshot lives, plus the look-ups into the log that validate it."""

    async def load(self) -> bytes | None:
        """The stored snapshot, or None if there is none."""
        ...

    async def save(self, data: bytes) -> None:
        """Replace the stored snapshot (last writer wins)."""
        ...

    async def log_bounds(self) -> tuple[int, int]:
        """First and last sequence of the event log now."""
        ...

    async def event_id_at(self, seq: int) -> str | None:
        """The id of the event stored at ``seq``, None if that sequence is gone."""
        ...


@attrs.define
class WriteTimes:
    """How long snapshot (or checkpoint) writes took, for the operator's metrics."""

    written: int = 0
    failed: int = 0
    seconds: float = 0.0  # all writes, failed ones included
    last_seconds: float = 0.0

    def record(self, seconds: float, ok: bool) -> None:
        self.seconds += seconds
        self.last_seconds = seconds
        if ok:
            self.written += 1
        else:
            self.failed += 1


@attrs.frozen
class Snapshot:
    """A decoded snapshot."""

    seq: int
    event_id: str
    schemas: Mapping[str, int]
    models: Mapping[str, Any]
    written_ms: int = 0


def erases_data(rec: Recorded) -> bool:
    """Whether ``rec`` makes older snapshots hold data the log has erased."""
    return isinstance(rec.envelope.event, ERASING)


def dumps(value: Any) -> bytes:
    """Deterministic compact JSON (sorted keys)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@contextmanager
def gc_paused() -> Iterator[None]:
    """Build or walk millions of long-lived objects without the cyclic GC.

    Otherwise each young-generation overflow eventually triggers full
    collections that rescan the whole (growing) heap: most of the cost of
    exporting or restoring a large state.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _dump_into(value: Any, parts: list[str], depth: int, size: int) -> None:
    """Append the JSON of ``value`` to ``parts``; same text as ``dumps``.

    The top two levels (model names, each model's fields) are walked; below
    them a large dict is encoded in sorted slices of ``size`` entries.
    """
    if not isinstance(value, dict) or (depth >= 2 and len(value) <= size):
        parts.append(dumps(value).decode())
        return
    keys = sorted(value)
    parts.append("{")
    if depth < 2:
        for i, key in enumerate(keys):
            parts.append(("," if i else "") + json.dumps(key, ensure_ascii=False) + ":")
            _dump_into(value[key], parts, depth + 1, size)
    else:
        for i in range(0, len(keys), size):
            chunk = {k: value[k] for k in keys[i : i + size]}
            parts.append(("," if i else "") + dumps(chunk).decode()[1:-1])
    parts.append("}")


def dumps_sliced(value: Any, size: int = SLICE) -> bytes:
    """``dumps(value)``, built from many small encoder calls."""
    parts: list[str] = []
    _dump_into(value, parts, 0, size)
    return "".join(parts).encode()


def encode_snapshot(
    seq: int, event_id: str, states: Mapping[str, tuple[int, Any]], written_ms: int = 0
) -> bytes:
    """Bytes of a snapshot; ``states`` maps model name to (schema, state).

    CPU-heavy for large state; callers run it in a worker thread: it encodes
    in slices (the loop gets the GIL in between) and zlib releases the GIL.
    """
    body = zlib.compress(dumps_sliced({n: s for n, (_v, s) in states.items()}), 1)
    header = {
        "format": FORMAT_VERSION,
        "seq": seq,
        "event_id": event_id,
        "schemas": {n: v for n, (v, _s) in states.items()},
        "sha256": hashlib.sha256(body).hexdigest(),
        "written_ms": written_ms,
    }
    return MAGIC + dumps(header) + b"\n" + body


def read_header(data: bytes) -> dict[str, Any]:
    """The header of ``data``; ``SnapshotError`` if it is not a snapshot of this format."""
    if not data.startswith(MAGIC):
        raise SnapshotError("not a snapshot")
    end = data.find(b"\n", len(MAGIC))
    try:
        header: dict[str, Any] = json.loads(data[len(MAGIC) : end])
        version = header["format"]
    except (ValueError, KeyError, TypeError) as exc:
        raise SnapshotError("unreadable header") from exc
    if version != FORMAT_VERSION:
        raise SnapshotError(f"format {version}, this version reads {FORMAT_VERSION}")
    return header


def decode_snapshot(data: bytes) -> Snapshot:
    """Check and decode; ``SnapshotError`` on any problem."""
    header = read_header(data)
    body = data[data.find(b"\n", len(MAGIC)) + 1 :]
    if hashlib.sha256(body).hexdigest() != header.get("sha256"):
        raise SnapshotError("checksum mismatch")
    try:
        with gc_paused():
            models = json.loads(zlib.decompress(body))
        snap = Snapshot(
            seq=int(header["seq"]),
            event_id=str(header["event_id"]),
            schemas={str(k): int(v) for k, v in header["schemas"].items()},
            models=models,
            written_ms=int(header.get("written_ms", 0)),
        )
    except (ValueError, KeyError, TypeError, AttributeError, zlib.error) as exc:
        raise SnapshotError(f"unreadable body ({type(exc).__name__})") from exc
    if not isinstance(snap.models, dict) or set(snap.models) != set(snap.schemas):
        raise SnapshotError("body and header disagree")
    return snap


def check_schemas(snap: Snapshot, models: Sequence[Snapshottable]) -> None:
    """``SnapshotError`` unless the snapshot has exactly these models at these schemas."""
    wanted = {m.snapshot_name: m.snapshot_schema for m in models}
    if dict(snap.schemas) != wanted:
        raise SnapshotError(f"model schemas {dict(snap.schemas)} differ from {wanted}")


async def check_anchor(snap: Snapshot, store: SnapshotStore) -> None:
    """``SnapshotError`` unless the log still holds the snapshot's anchor and what follows."""
    first, last = await store.log_bounds()
    if snap.seq > last:
        raise SnapshotError(
            f"it covers sequence {snap.seq} but the event log ends at {last} "
            "(stream recreated or restored from a backup?)"
        )
    if first > snap.seq + 1 and last > snap.seq:
        raise SnapshotError(f"events after sequence {snap.seq} are no longer in the log")
    if await store.event_id_at(snap.seq) != snap.event_id:
        raise SnapshotError(f"the event at sequence {snap.seq} is not the one it was taken at")
