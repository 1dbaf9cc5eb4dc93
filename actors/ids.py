"""Time-sortable unique ids (ULID layout: 48-bit milliseconds + 80 random bits).

Ids sort by creation time, so event ids double as a stable order key and as
the JetStream ``Nats-Msg-Id`` for dedupe. Within one process ids are strictly
increasing even inside the same millisecond.
"""

from __future__ import annotations

import secrets
import threading
import time

_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32
_lock = threading.Lock()
_last = 0


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, rem = divmod(value, 32)
        out.append(_ALPHABET[rem])
    return "".join(reversed(out))


def new_id() -> str:
    """A 26-character id, lexicographically ordered by creation time."""
    global _last
    with _lock:
        candidate = (time.time_ns() // 1_000_000) << 80 | secrets.randbits(80)
        if candidate <= _last:
            candidate = _last + 1
        _last = candidate
    return _encode(candidate, 26)


def id_timestamp_ms(value: str) -> int:
    """Milliseconds since the epoch encoded in an id from ``new_id``."""
    n = 0
    for ch in value[:10]:
        n = n * 32 + _ALPHABET.index(ch)
    return n
