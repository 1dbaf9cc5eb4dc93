"""Password rules and hashing: bcrypt, never truncated, never on the loop.

bcrypt only reads 72 bytes (and the ``bcrypt`` package refuses longer
input), so every password is first reduced to a fixed 44-byte string:
base64(HMAC-SHA256(key="chatto-password-v1", password)). All of a 128-byte
password then counts, no NUL byte reaches bcrypt, and the scheme is marked
in the stored hash (``$chatto1$`` + bcrypt hash) for future migration.
Hashing runs in worker threads behind a capacity limiter so logins cannot
starve the event loop; unknown users are compared against a dummy hash so
every login costs exactly one bcrypt comparison.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import unicodedata

import attrs
import bcrypt
import trio

from chatto.errors import BusyError, InvalidInputError

MIN_CHARS = 8
MAX_BYTES = 128
SCHEME = "$chatto1$"
_PREHASH_KEY = b"chatto-password-v1"


class WeakPasswordError(InvalidInputError):
    """The password violates the length rules (the user's to fix)."""

    code = "INVALID_PASSWORD"


RULE = f"at least {MIN_CHARS} characters and at most {MAX_BYTES} bytes (UTF-8)"


def check_rules(password: str) -> bytes:
    """The password as UTF-8 bytes, if it has 8+ characters and 128 bytes at most.

    The minimum counts code points after NFC, so "éééé" typed as e + combining
    accent (8 code points) is still 4 characters: multi-byte letters cannot
    pass a byte minimum with half the characters. The maximum stays in bytes,
    the unit the hash input is bounded in. The bytes hashed are the ones the
    user sent (not normalised), so existing hashes keep verifying.
    """
    raw = password.encode("utf-8")
    # Bytes first: normalising is then bounded by the 128-byte maximum.
    if len(raw) > MAX_BYTES or len(unicodedata.normalize("NFC", password)) < MIN_CHARS:
        raise WeakPasswordError(f"password must have {RULE}")
    return raw


def _prehash(raw: bytes) -> bytes:
    return base64.b64encode(hmac.new(_PREHASH_KEY, raw, hashlib.sha256).digest())


@attrs.define
class HasherStats:
    hashes: int = 0
    checks: int = 0
    refused: int = 0  # comparisons refused because too many waited


class PasswordHasher:
    """bcrypt in worker threads, at most ``threads`` at a time."""

    def __init__(self, cost: int = 12, threads: int = 2, max_waiting: int = 64) -> None:
        self.cost = cost
        self._limiter = trio.CapacityLimiter(threads)
        self.max_waiting = max_waiting
        self._dummy: str | None = None
        self.stats = HasherStats()

    async def hash(self, password: str) -> str:
        """Hash a password that passed ``check_rules``."""
        pre = _prehash(check_rules(password))
        self.stats.hashes += 1
        digest = await trio.to_thread.run_sync(
            lambda: bcrypt.hashpw(pre, bcrypt.gensalt(self.cost)), limiter=self._limiter
        )
        return SCHEME + digest.decode("ascii")

    async def verify(self, password: str, stored: str | None) -> bool:
        """One bcrypt comparison, against ``stored`` or the dummy hash.

        When too many comparisons already wait for a thread, refuse at once
        (``BusyError``) rather than queue: a login flood cannot build a
        backlog that delays everyone else.
        """
        if self._limiter.statistics().tasks_waiting >= self.max_waiting:
            self.stats.refused += 1
            raise BusyError("the server is busy checking passwords; try again shortly")
        raw = password.encode("utf-8")
        target = stored if stored and stored.startswith(SCHEME) else None
        if target is None:
            target = await self._dummy_hash()
        pre = _prehash(raw[: MAX_BYTES * 4])  # bounded work for absurd input
        self.stats.checks += 1
        hashed = target[len(SCHEME) :].encode("ascii")
        ok = await trio.to_thread.run_sync(
            lambda: bcrypt.checkpw(pre, hashed), limiter=self._limiter
        )
        return ok and stored is not None and target == stored

    def queue(self) -> tuple[int, int]:
        """(bcrypt jobs running, jobs waiting for a thread)."""
        stats = self._limiter.statistics()
        return stats.borrowed_tokens, stats.tasks_waiting

    async def _dummy_hash(self) -> str:
        if self._dummy is None:
            pre = _prehash(secrets.token_bytes(32))
            digest = await trio.to_thread.run_sync(
                lambda: bcrypt.hashpw(pre, bcrypt.gensalt(self.cost)), limiter=self._limiter
            )
            self._dummy = SCHEME + digest.decode("ascii")
        return self._dummy

    async def warm_up(self) -> None:
        """Compute the dummy hash now, so the first unknown-user login is not faster."""
        await self._dummy_hash()
