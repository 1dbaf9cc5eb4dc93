"""The archive format: a tar.gz with a manifest, optionally age-encrypted.

Members: ``manifest.json``, ``streams/EVT.jsonl``, ``kv/<bucket>.jsonl`` and
``objects/OBJECTS.jsonl`` (one JSON record per line, bytes as base64). The
manifest lists every member with its record count and SHA-256, so a
truncated or altered archive is detected before anything is written.
Encryption is age with a passphrase (scrypt) via pyrage, so the standalone
``age`` CLI can decrypt it and the result is a plain tar.gz.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
import time
from collections.abc import Iterable
from typing import Any

import attrs
import pyrage

from chatto.errors import ChattoError

FORMAT = "chatto-backup"
VERSION = 1
AGE_MAGIC = b"age-encryption.org/v1"


class ArchiveError(ChattoError):
    """The archive is corrupt, truncated, altered or the passphrase is wrong."""

    code = "BAD_ARCHIVE"


@attrs.define
class Archive:
    """In-memory archive content: member name -> list of records."""

    manifest: dict[str, Any]
    members: dict[str, list[dict[str, Any]]]


def _jsonl(records: Iterable[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(r, separators=(",", ":")).encode() + b"\n" for r in records)


def build(members: dict[str, list[dict[str, Any]]], info: dict[str, Any]) -> bytes:
    """The tar.gz bytes for ``members`` plus a manifest describing them."""
    blobs = {name: _jsonl(recs) for name, recs in members.items()}
    manifest = {
        "format": FORMAT,
        "version": VERSION,
        "created": int(time.time()),
        **info,
        "members": {
            name: {"records": len(members[name]), "sha256": hashlib.sha256(b).hexdigest()}
            for name, b in blobs.items()
        },
    }
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in [
            ("manifest.json", json.dumps(manifest, indent=2).encode()),
            *blobs.items(),
        ]:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime, ti.mode = len(data), manifest["created"], 0o600
            tar.addfile(ti, io.BytesIO(data))
    return out.getvalue()


def encrypt(data: bytes, passphrase: str) -> bytes:
    return bytes(pyrage.passphrase.encrypt(data, passphrase))


def is_encrypted(data: bytes) -> bool:
    return data.startswith(AGE_MAGIC)


def decrypt(data: bytes, passphrase: str | None) -> bytes:
    if passphrase is None:
        raise ArchiveError("the archive is encrypted: a passphrase is needed")
    try:
        return bytes(pyrage.passphrase.decrypt(data, passphrase))
    except pyrage.DecryptError as exc:
        raise ArchiveError("cannot decrypt: wrong passphrase or damaged archive") from exc


def read(data: bytes) -> Archive:
    """Parse and verify a tar.gz archive; ``ArchiveError`` on any inconsistency."""
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
            files = {m.name: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    except (tarfile.TarError, OSError, EOFError, gzip.BadGzipFile) as exc:
        raise ArchiveError(f"not a readable tar.gz archive ({type(exc).__name__})") from exc
    try:
        manifest = json.loads(files.pop("manifest.json"))
    except (KeyError, ValueError) as exc:
        raise ArchiveError("the archive has no valid manifest") from exc
    if manifest.get("format") != FORMAT or manifest.get("version") != VERSION:
        raise ArchiveError("not a Chatto backup of a supported version")
    members: dict[str, list[dict[str, Any]]] = {}
    for name, meta in manifest.get("members", {}).items():
        blob = files.get(name)
        if blob is None or hashlib.sha256(blob).hexdigest() != meta.get("sha256"):
            raise ArchiveError(f"member {name} is missing or does not match the manifest")
        records = [json.loads(line) for line in blob.splitlines() if line]
        if len(records) != meta.get("records"):
            raise ArchiveError(f"member {name} has the wrong number of records")
        members[name] = records
    if set(files) - set(members):
        raise ArchiveError("the archive holds files the manifest does not list")
    return Archive(manifest, members)
