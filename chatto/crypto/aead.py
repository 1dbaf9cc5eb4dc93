"""XChaCha20-Poly1305-IETF sealing (PyNaCl) with a format version byte.

Sealed blob: ``0x02 || nonce(24) || ciphertext+tag``. Any failure to open
(wrong key or AAD, tampering, truncation, unknown version) is one error,
``DecryptionFailed``, whose message carries no key or plaintext.
Legacy v1 bodies (ChaCha20-Poly1305-IETF, 12-byte nonce, no AAD) can still
be opened.
"""

from __future__ import annotations

import nacl.bindings as sodium
import nacl.exceptions
import nacl.utils

from chatto.errors import ChattoError

VERSION = 2
KEY_BYTES = 32
NONCE_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_NPUBBYTES  # 24
TAG_BYTES = sodium.crypto_aead_xchacha20poly1305_ietf_ABYTES  # 16
LEGACY_NONCE_BYTES = sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES  # 12


class DecryptionFailed(ChattoError):
    """Ciphertext did not authenticate under this key and context.

    Stored data was tampered with, copied into another context, or sealed
    under another key; the message never carries key or plaintext bytes.
    """

    code = "DECRYPTION_FAILED"
    http_status = 500


def new_key() -> bytes:
    """A fresh random 32-byte key."""
    return nacl.utils.random(KEY_BYTES)


def _check_key(key: bytes) -> None:
    # A key of the wrong size is a programming error, not bad ciphertext.
    if len(key) != KEY_BYTES:
        raise ValueError("keys are 32 bytes")


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` bound to ``aad``."""
    _check_key(key)
    nonce = nacl.utils.random(NONCE_BYTES)
    ct = sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(plaintext, aad, nonce, key)
    return bytes([VERSION]) + nonce + ct


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Reverse ``seal``; ``DecryptionFailed`` on any mismatch."""
    _check_key(key)
    if len(blob) < 1 + NONCE_BYTES + TAG_BYTES or blob[0] != VERSION:
        raise DecryptionFailed("ciphertext is malformed or of an unknown version")
    nonce, ct = blob[1 : 1 + NONCE_BYTES], blob[1 + NONCE_BYTES :]
    try:
        return bytes(sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(ct, aad, nonce, key))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("ciphertext failed authentication") from exc


def seal_legacy_v1(key: bytes, plaintext: bytes) -> bytes:
    """Produce a legacy v1 body (only to build fixtures for compatibility tests)."""
    _check_key(key)
    nonce = nacl.utils.random(LEGACY_NONCE_BYTES)
    return nonce + sodium.crypto_aead_chacha20poly1305_ietf_encrypt(plaintext, None, nonce, key)


def open_legacy_v1(key: bytes, blob: bytes) -> bytes:
    """Open a legacy v1 body: ChaCha20-Poly1305-IETF, 12-byte nonce, no AAD."""
    _check_key(key)
    if len(blob) < LEGACY_NONCE_BYTES + TAG_BYTES:
        raise DecryptionFailed("legacy ciphertext is truncated")
    nonce, ct = blob[:LEGACY_NONCE_BYTES], blob[LEGACY_NONCE_BYTES:]
    try:
        return bytes(sodium.crypto_aead_chacha20poly1305_ietf_decrypt(ct, None, nonce, key))
    except nacl.exceptions.CryptoError as exc:
        raise DecryptionFailed("legacy ciphertext failed authentication") from exc
