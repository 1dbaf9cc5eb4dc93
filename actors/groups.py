"""The room group entity: a name rooms can be filed under."""

from __future__ import annotations

from typing import Any

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Recorded
from actors.rooms.commands import CreateGroup
from actors.rooms.events import GroupCreated
from actors.store import EventStore
from chatto.errors import ConflictError, InvalidInputError


class GroupActor(EntityActor):
    """A room group: a name rooms can be filed under."""

    def __init__(self, group_id: str, store: EventStore) -> None:
        super().__init__(EntityRef("group", group_id), store)
        self.exists = False

    def apply(self, recorded: Recorded) -> None:
        if isinstance(recorded.envelope.event, GroupCreated):
            self.exists = True

    def decide(self, command: Any) -> Decision:
        if isinstance(command, CreateGroup):
            if self.exists:
                raise ConflictError("group already exists")
            name = command.name.strip()
            if not 1 <= len(name) <= 80:
                raise InvalidInputError("group name must be 1 to 80 characters")
            return Decision([GroupCreated(name, command.created_by)])
        raise InvalidInputError(f"group actor cannot handle {type(command).__name__}")
