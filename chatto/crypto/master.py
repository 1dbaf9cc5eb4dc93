"""The key-encryption master key: it seals every KEK and never enters NATS.

A copy of the NATS store alone (or of the whole data directory) opens
nothing: every KEK record is sealed by this key, which lives in its own file
(``kms.master_key_file``, mode 0600, written by ``chatto init`` next to the
config) or comes from the environment (``CHATTO_KMS_MASTER_KEY``, base64).
Its id is a keyed hash of the key, safe to show and store: records carry it
so a server with the wrong key says so instead of failing at random.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from pathlib import Path

from chatto.crypto import aead
from chatto.errors import ChattoError
from chatto.files import create_private

ENV_VAR = "CHATTO_KMS_MASTER_KEY"


class MasterKeyError(ChattoError):
    """The master key is missing, unreadable or malformed (an operator's fix)."""

    code = "MASTER_KEY"
    http_status = 500


class LocalMasterKey:
    """A 32-byte master key held in this process (the ``local`` provider)."""

    def __init__(self, key: bytes) -> None:
        if len(key) != aead.KEY_BYTES:
            raise MasterKeyError("a master key is 32 bytes")
        self._key = key
        self.key_id = hmac.new(key, b"chatto master key id", hashlib.sha256).hexdigest()[:16]
        self._wraps = self._unwraps = 0

    def __repr__(self) -> str:
        return f"LocalMasterKey(id={self.key_id})"

    def statistics(self) -> dict[str, int]:
        """wraps and unwraps done with this key."""
        return {"wraps": self._wraps, "unwraps": self._unwraps}

    async def wrap(self, plaintext: bytes, aad: bytes) -> bytes:
        """Seal ``plaintext`` (a KEK) bound to ``aad`` (the record's name)."""
        self._wraps += 1
        return aead.seal(self._key, plaintext, aad)

    async def unwrap(self, sealed: bytes, aad: bytes) -> bytes:
        """Open what ``wrap`` sealed; ``DecryptionFailed`` on any mismatch."""
        self._unwraps += 1
        return aead.open_sealed(self._key, sealed, aad)


def new_master_key() -> LocalMasterKey:
    """A fresh random master key."""
    return LocalMasterKey(aead.new_key())


def encode_key(key: LocalMasterKey) -> bytes:
    """The key file's content: base64 and a newline (the key is never logged)."""
    return base64.b64encode(key._key) + b"\n"


def decode_key(text: bytes, where: str) -> LocalMasterKey:
    """Parse a key file's or the environment's base64; the message names ``where`` only."""
    try:
        raw = base64.b64decode(text.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise MasterKeyError(f"master key in {where} is not base64") from None
    if len(raw) != aead.KEY_BYTES:
        raise MasterKeyError(f"master key in {where} is not 32 bytes")
    return LocalMasterKey(raw)


def read_key_file(path: Path) -> LocalMasterKey | None:
    """The key in ``path``; None if there is no such file."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise MasterKeyError(f"cannot read master key file {path}: {exc.strerror}") from None
    if path.stat().st_mode & 0o077:
        raise MasterKeyError(f"master key file {path} is readable by others: chmod 600 it")
    return decode_key(data, str(path))


def write_key_file(path: Path, key: LocalMasterKey) -> None:
    """Create ``path`` (0600) exclusively and durably; ``MasterKeyError`` if it exists."""
    try:
        create_private(path, encode_key(key))
    except FileExistsError:
        raise MasterKeyError(f"refusing to overwrite master key file {path}") from None
    except OSError as exc:
        raise MasterKeyError(f"cannot write master key file {path}: {exc.strerror}") from None


def from_environment(environ: dict[str, str] | None = None) -> LocalMasterKey | None:
    """The key in ``CHATTO_KMS_MASTER_KEY``, if set."""
    env = os.environ if environ is None else environ
    text = env.get(ENV_VAR, "")
    return decode_key(text.encode(), ENV_VAR) if text else None
