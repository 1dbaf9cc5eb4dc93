"""The server entity: its profile (name, description), as actor and read model."""

from __future__ import annotations

from typing import Any

import attrs

from actors.entity import Decision, EntityActor
from actors.events import SERVER, ProbeRecorded, Recorded, ServerProfileChanged
from actors.store import EventStore
from chatto.errors import InvalidInputError

MAX_NAME = 64
MAX_DESCRIPTION = 1000


@attrs.frozen
class SetServerProfile:
    """Change the server's display name and description."""

    name: str
    description: str = ""


@attrs.frozen
class RecordProbe:
    """Append a diagnostic event (tests and benchmarks of the write path)."""

    value: int
    note: str = ""


class ServerActor(EntityActor):
    """Serializes changes to the server profile."""

    def __init__(self, store: EventStore, default_name: str, max_retries: int = 5) -> None:
        super().__init__(SERVER, store, max_retries)
        self.name = default_name
        self.description = ""
        self.probes = 0

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, ServerProfileChanged):
            self.name, self.description = event.name, event.description
        elif isinstance(event, ProbeRecorded):
            self.probes += 1

    def decide(self, command: Any) -> Decision:
        if isinstance(command, SetServerProfile):
            name = command.name.strip()
            if not 1 <= len(name) <= MAX_NAME:
                raise InvalidInputError(f"server name must be 1..{MAX_NAME} characters")
            if len(command.description) > MAX_DESCRIPTION:
                raise InvalidInputError(f"description must be at most {MAX_DESCRIPTION} characters")
            if (name, command.description) == (self.name, self.description):
                return Decision(reply=self.name)
            return Decision([ServerProfileChanged(name, command.description)], reply=name)
        if isinstance(command, RecordProbe):
            return Decision([ProbeRecorded(command.value, command.note)], reply=command.value)
        raise InvalidInputError(f"server actor cannot handle {type(command).__name__}")


class ServerView:
    """Read model of the server profile (what queries read)."""

    snapshot_name = "server"
    snapshot_schema = 1

    def __init__(self, default_name: str) -> None:
        self.name = default_name
        self.description = ""
        self.probes = 0

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, ServerProfileChanged):
            self.name, self.description = event.name, event.description
        elif isinstance(event, ProbeRecorded):
            self.probes += 1

    def export_state(self) -> dict[str, Any]:
        return {"name": self.name, "description": self.description, "probes": self.probes}

    async def restore_state(self, state: dict[str, Any]) -> None:
        self.name, self.description = str(state["name"]), str(state["description"])
        self.probes = int(state["probes"])
