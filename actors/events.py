"""Event and entity types shared by every actor.

Events are ``attrs.frozen`` value classes with a ``TYPE`` tag; they carry no
serialization code (``chatto.codec`` owns that). An ``Envelope`` adds the
id, the entity it belongs to and the time; ``Recorded`` adds the stream
sequence once stored.
"""

from __future__ import annotations

from typing import ClassVar

import attrs


@attrs.frozen
class EntityRef:
    """Which entity an event belongs to; one subject prefix per entity."""

    kind: str
    id: str = ""

    @property
    def key(self) -> str:
        return f"{self.kind}.{self.id}" if self.id else self.kind


SERVER = EntityRef("server")


EVENT_TYPES: dict[str, type[Event]] = {}


class Event:
    """Base of every event payload; subclasses set a unique ``TYPE``."""

    TYPE: ClassVar[str] = ""

    def __init_subclass__(cls, **kwargs: object) -> None:
        super().__init_subclass__(**kwargs)
        # attrs.frozen re-creates the class (slots); the re-created class
        # carries the same TYPE and simply replaces the first registration.
        if cls.TYPE:
            existing = EVENT_TYPES.get(cls.TYPE)
            if existing is not None and existing.__qualname__ != cls.__qualname__:
                raise TypeError(f"duplicate event type {cls.TYPE!r}")
            EVENT_TYPES[cls.TYPE] = cls


@attrs.frozen
class Envelope:
    """An event with its identity and context."""

    id: str
    entity: EntityRef
    at_ms: int
    event: Event


@attrs.frozen
class Recorded:
    """An envelope as stored, with its stream sequence."""

    seq: int
    envelope: Envelope


# --- server-level events (the foundation's own entity) ---------------------
@attrs.frozen
class ServerProfileChanged(Event):
    """The server's display name or description changed."""

    TYPE: ClassVar[str] = "server.profile_changed"
    name: str
    description: str = ""


@attrs.frozen
class ProbeRecorded(Event):
    """A diagnostic write used by health checks, benchmarks and tests."""

    TYPE: ClassVar[str] = "probe.recorded"
    value: int
    note: str = ""
