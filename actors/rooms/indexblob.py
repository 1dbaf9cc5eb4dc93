"""The bytes of a room index object (issue #22): a small JSON header, the
long strings (the arrays' base64) beside it, zlib level 1.

Version 1 was the whole row as one JSON text. Parsing or writing a 100k-post
room's 11 MB of JSON is one C call that holds the GIL (~16 ms to parse,
~29 ms to write here), and the event loop waits for the GIL while a worker
thread decodes. Here no single call handles more than one column: the
header holds the structure and short values, each string of at least
``BLOB`` characters is stored after it (``{"$blob": i}`` in its place), a
dict of more than ``CHUNK`` entries as JSON texts of ``CHUNK`` entries each
(``{"$dict": [i, ...]}``), and the walk that splits and joins them is
Python, which yields the GIL every switch interval. With `chatto run`'s
settings the longest hold while a worker thread writes a 100k-post index
fell from 39-71 ms to 3-6 ms, while it reads one from 14-18 to 4-6 ms (the
rest is zlib), for about the same time in all
(``scripts/bench_index_stall.py``).
Deterministic: the same row gives the same bytes (the snapshot store
keeps an unchanged index's object by its digest).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

MAGIC = b"chatto-room-index-2\n"
BLOB = 4096  # strings at least this long go beside the header
CHUNK = 1000  # a dict with more entries (a room's threads) goes as JSON chunks


def pack(row: dict[str, Any]) -> bytes:
    blobs: list[bytes] = []

    def out(value: Any) -> Any:
        if isinstance(value, str) and len(value) >= BLOB:
            blobs.append(value.encode())
            return {"$blob": len(blobs) - 1}
        if isinstance(value, dict) and len(value) > CHUNK:
            keys, chunks = sorted(value), []
            for at in range(0, len(keys), CHUNK):
                part = {k: out(value[k]) for k in keys[at : at + CHUNK]}
                blobs.append(json.dumps(part, sort_keys=True, separators=(",", ":")).encode())
                chunks.append(len(blobs) - 1)
            return {"$dict": chunks}
        if isinstance(value, dict):
            return {k: out(value[k]) for k in sorted(value)}
        if isinstance(value, list):
            return [out(v) for v in value]
        return value

    skeleton = out(row)
    header = json.dumps(
        {"blobs": [len(b) for b in blobs], "row": skeleton}, sort_keys=True, separators=(",", ":")
    ).encode()
    return MAGIC + zlib.compress(b"".join([b"%d\n" % len(header), header, *blobs]), 1)


def unpack(data: bytes) -> dict[str, Any]:
    """The row in ``data``; ``ValueError`` if it is not a well-formed object."""
    try:
        return _unpack(data)
    except (KeyError, IndexError, TypeError) as exc:
        raise ValueError(f"room index object damaged: {exc!r}") from None


def _unpack(data: bytes) -> dict[str, Any]:
    if not data.startswith(MAGIC):
        raise ValueError("not a room index object")
    try:
        body = zlib.decompress(data[len(MAGIC) :])
    except zlib.error as exc:
        raise ValueError(f"room index object damaged: {exc}") from None
    newline = body.find(b"\n", 0, 24)
    if newline < 0:
        raise ValueError("room index object damaged: no header")
    start = newline + 1
    size = int(body[:newline])
    header = json.loads(body[start : start + size])
    pos = start + size
    blobs: list[str] = []
    for length in header["blobs"]:
        blobs.append(body[pos : pos + length].decode())
        pos += length
    if pos != len(body):
        raise ValueError("room index object damaged: wrong length")

    def back(value: Any) -> Any:
        if isinstance(value, dict):
            if len(value) == 1 and "$blob" in value:
                return blobs[value["$blob"]]
            if len(value) == 1 and "$dict" in value:
                return {k: back(v) for i in value["$dict"] for k, v in json.loads(blobs[i]).items()}
            return {k: back(v) for k, v in value.items()}
        if isinstance(value, list):
            return [back(v) for v in value]
        return value

    row: dict[str, Any] = back(header["row"])
    return row
