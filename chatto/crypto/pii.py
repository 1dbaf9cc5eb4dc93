"""Encrypted personal data fields inside durable user events.

Each field (login, display name, email) is sealed with the user's PII DEK
and an AAD binding it to its event id, user id, event type, field name and
DEK epoch; stored as URL-safe base64 text in the event.
"""

from __future__ import annotations

import base64

from chatto.crypto import aad, aead


def seal_pii(
    dek: bytes, *, event_id: str, user_id: str, event_type: str, field: str, epoch: int, value: str
) -> str:
    """Encrypt one PII field for storage in an event."""
    context = aad.pii_aad(event_id, user_id, event_type, field, epoch)
    return base64.urlsafe_b64encode(aead.seal(dek, value.encode("utf-8"), context)).decode()


def open_pii(
    dek: bytes, blob: str, *, event_id: str, user_id: str, event_type: str, field: str, epoch: int
) -> str:
    """Decrypt one PII field; ``DecryptionFailed`` if anything does not match."""
    context = aad.pii_aad(event_id, user_id, event_type, field, epoch)
    try:
        raw = base64.urlsafe_b64decode(blob.encode())
    except ValueError as exc:
        raise aead.DecryptionFailed("stored field is not valid base64") from exc
    return aead.open_sealed(dek, raw, context).decode("utf-8")
