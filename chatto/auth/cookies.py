"""The session cookie: signed always, encrypted when a secret is configured.

Value: ``v1.<payload>.<mac>`` (signed) or ``e1.<sealed payload>.<mac>``
(sealed with XChaCha20-Poly1305 under a key derived from
``webserver.cookie_encryption_secret``, then signed). The MAC is
HMAC-SHA256 under ``webserver.cookie_signing_secret`` over the prefix and
body. Anything malformed, tampered or truncated decodes to ``None``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from typing import Any

from chatto.crypto import aead
from chatto.errors import ChattoError

COOKIE_NAME = "chatto_session"
_AAD = b"chatto-session-cookie-v1"
MAX_COOKIE_CHARS = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class CookieCodec:
    """Encodes and checks session cookie values; builds Set-Cookie headers."""

    def __init__(
        self, signing_secret: str, encryption_secret: str, secure: bool, max_age: int
    ) -> None:
        self._sign_key = hashlib.sha256(b"cookie-sign\x00" + signing_secret.encode()).digest()
        self._enc_key = (
            hashlib.sha256(b"cookie-enc\x00" + encryption_secret.encode()).digest()
            if encryption_secret
            else None
        )
        self.secure = secure
        self.max_age = max_age

    def _mac(self, text: str) -> str:
        return _b64(hmac.new(self._sign_key, text.encode(), hashlib.sha256).digest())

    def encode(self, payload: dict[str, Any]) -> str:
        raw = json.dumps(payload, separators=(",", ":")).encode()
        if self._enc_key is not None:
            body = "e1." + _b64(aead.seal(self._enc_key, raw, _AAD))
        else:
            body = "v1." + _b64(raw)
        return body + "." + self._mac(body)

    def decode(self, value: str) -> dict[str, Any] | None:
        if len(value) > MAX_COOKIE_CHARS or value.count(".") != 2:
            return None
        prefix, data, mac = value.split(".")
        body = f"{prefix}.{data}"
        if not hmac.compare_digest(self._mac(body), mac):
            return None
        try:
            raw = _unb64(data)
            if prefix == "e1" and self._enc_key is not None:
                raw = aead.open_sealed(self._enc_key, raw, _AAD)
            elif prefix != "v1" or self._enc_key is not None:
                return None  # an unencrypted cookie is refused once encryption is on
            doc = json.loads(raw)
        except (ValueError, ChattoError):
            return None
        return doc if isinstance(doc, dict) else None

    def csrf_token(self, sid: str) -> str:
        """The CSRF token bound to one cookie session."""
        return _b64(hmac.new(self._sign_key, b"csrf\x00" + sid.encode(), hashlib.sha256).digest())

    def set_cookie(self, value: str) -> tuple[bytes, bytes]:
        attrs = f"{COOKIE_NAME}={value}; Max-Age={self.max_age}; Path=/; HttpOnly; SameSite=Lax"
        if self.secure:
            attrs += "; Secure"
        return (b"set-cookie", attrs.encode())

    def clear_cookie(self) -> tuple[bytes, bytes]:
        attrs = f"{COOKIE_NAME}=; Max-Age=0; Path=/; HttpOnly; SameSite=Lax"
        if self.secure:
            attrs += "; Secure"
        return (b"set-cookie", attrs.encode())


def read_cookie(header_value: str | None, name: str = COOKIE_NAME) -> str | None:
    """The value of cookie ``name`` in a Cookie header, if present."""
    if not header_value:
        return None
    for part in header_value.split(";"):
        key, _, val = part.strip().partition("=")
        if key == name:
            return val
    return None
