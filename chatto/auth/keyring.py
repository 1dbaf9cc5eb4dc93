"""Keyed hashes and derived keys, all from ``core.secret_key``.

Nothing raw is ever a storage key: credential verifiers, index keys and
client-IP hashes are HMAC-SHA256 under the server secret, so a backup or a
look at NATS reveals no token, code, email or address. Restoring with a
different secret therefore invalidates every credential, by design.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets


class Keyring:
    """Derivations from the server secret; holds no other state."""

    def __init__(self, secret_key: str) -> None:
        self._secret = secret_key.encode("utf-8")

    def verifier(self, purpose: str, token: str) -> str:
        """KV key suffix for a credential: HMAC(secret, purpose || token), hex."""
        mac = hmac.new(self._secret, purpose.encode() + b"\x00" + token.encode(), hashlib.sha256)
        return mac.hexdigest()

    def index_key(self, kind: str, value: str) -> str:
        """Lookup key for a unique value (normalised login or email)."""
        return self.verifier("index:" + kind, value)

    def ip_hash(self, ip: str) -> str:
        """A client IP as stored in audit events (keyed, truncated)."""
        return self.verifier("client-ip", ip)[:32]

    def derive_key(self, purpose: str) -> bytes:
        """A 32-byte subkey for server-side sealing of runtime records."""
        return hmac.new(self._secret, b"derive\x00" + purpose.encode(), hashlib.sha256).digest()


def new_token(prefix: str = "") -> str:
    """An unguessable credential (256 bits), URL-safe."""
    return prefix + secrets.token_urlsafe(32)


def new_code() -> str:
    """A six-digit verification code, uniformly random."""
    return f"{secrets.randbelow(1_000_000):06d}"


def same(a: str, b: str) -> bool:
    """Constant-time string comparison."""
    return hmac.compare_digest(a.encode(), b.encode())
