"""Canonical, versioned, length-safe Additional Authenticated Data.

``encode`` writes a fixed prefix, the domain and version, then every field
as (length-prefixed name, type tag, length-prefixed value) with 4-byte
big-endian lengths, so no two different contexts share an encoding
(("ab","c") differs from ("a","bc")). A ciphertext copied into another
event, room, author, epoch or field therefore fails to open.
"""

from __future__ import annotations

from collections.abc import Sequence

PREFIX = b"chatto-aad\x00"


def _chunk(data: bytes) -> bytes:
    return len(data).to_bytes(4, "big") + data


def _value(value: str | int) -> tuple[bytes, bytes]:
    # bool is an int subclass; letting True pass as 1 would make two
    # different call sites share an encoding.
    if isinstance(value, bool):
        raise TypeError("AAD values are str or int, not bool")
    if isinstance(value, int):
        return b"i", str(value).encode("ascii")
    return b"s", value.encode("utf-8")


def encode(domain: str, version: int, fields: Sequence[tuple[str, str | int]]) -> bytes:
    """The canonical AAD of ``domain`` at ``version`` with ``fields`` in order."""
    if not 0 <= version < 2**32:
        raise ValueError("AAD version must fit in 4 bytes")
    out = [PREFIX, _chunk(domain.encode("utf-8")), version.to_bytes(4, "big")]
    for name, value in fields:
        tag, data = _value(value)
        out += [_chunk(name.encode("utf-8")), tag, _chunk(data)]
    return b"".join(out)


def body_aad(event_id: str, body_event_id: str, room_id: str, author_id: str, epoch: int) -> bytes:
    """AAD of a message body: its event context and the author's body-DEK epoch."""
    return encode(
        "message-body",
        1,
        [
            ("event_type", "message.body"),
            ("event_id", event_id),
            ("body_event_id", body_event_id),
            ("room_id", room_id),
            ("author_id", author_id),
            ("epoch", epoch),
        ],
    )


def pii_aad(event_id: str, user_id: str, event_type: str, field: str, epoch: int) -> bytes:
    """AAD of one encrypted personal-data field inside a user event."""
    return encode(
        "user-pii",
        1,
        [
            ("event_id", event_id),
            ("user_id", user_id),
            ("event_type", event_type),
            ("field", field),
            ("epoch", epoch),
        ],
    )


def dek_wrap_aad(user_id: str, purpose: str, epoch: int) -> bytes:
    """AAD binding a wrapped DEK to its owner, purpose and epoch."""
    return encode("dek-wrap", 1, [("user_id", user_id), ("purpose", purpose), ("epoch", epoch)])
