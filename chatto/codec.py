"""The one converter between domain values and bytes on the wire.

Events are stored as compact JSON: ``{"id", "e", "at", "t", "d"}`` where
``t`` is the event's ``TYPE`` tag (the tagged union) and ``d`` its fields as
unstructured by cattrs. Subjects are derived here too, so the naming scheme
lives in exactly one place.
"""

from __future__ import annotations

import json
import re
from typing import Any

import cattrs

from actors.events import EVENT_TYPES, EntityRef, Envelope, Event
from chatto.errors import InvalidInputError

converter = cattrs.Converter()

_TOKEN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


class CodecError(InvalidInputError):
    """Stored bytes could not be decoded: corrupt data or an unknown type."""

    code = "CORRUPT_EVENT"


def entity_prefix(entity: EntityRef) -> str:
    """``evt.<kind>`` or ``evt.<kind>.<id>``: every subject of that entity starts so."""
    if not _TOKEN.match(entity.kind) or (entity.id and not _TOKEN.match(entity.id)):
        raise InvalidInputError("entity kind and id must be short subject-safe tokens")
    return f"evt.{entity.kind}.{entity.id}" if entity.id else f"evt.{entity.kind}"


def entity_filter(entity: EntityRef) -> str:
    """Wildcard subject matching all events of ``entity``."""
    return entity_prefix(entity) + ".>"


def subject_for(envelope: Envelope) -> str:
    """The stream subject of an event: entity prefix plus the event type."""
    return entity_prefix(envelope.entity) + "." + envelope.event.TYPE.replace(".", "_")


def encode_envelope(envelope: Envelope) -> bytes:
    """Envelope to JSON bytes."""
    doc = {
        "id": envelope.id,
        "e": [envelope.entity.kind, envelope.entity.id],
        "at": envelope.at_ms,
        "t": envelope.event.TYPE,
        "d": converter.unstructure(envelope.event),
    }
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


def decode_envelope(data: bytes) -> Envelope:
    """JSON bytes to an envelope; ``CodecError`` on anything malformed."""
    try:
        doc: dict[str, Any] = json.loads(data)
        cls = EVENT_TYPES[doc["t"]]
        event: Event = converter.structure(doc["d"], cls)
        kind, ident = doc["e"]
        return Envelope(
            id=str(doc["id"]), entity=EntityRef(kind, ident), at_ms=int(doc["at"]), event=event
        )
    except (ValueError, KeyError, TypeError, cattrs.BaseValidationError) as exc:
        raise CodecError(f"cannot decode stored event: {type(exc).__name__}") from exc
