"""The room group entity: a name rooms can be filed under; renamed or deleted
(its rooms then become ungrouped: see ``RoomDirectory``)."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.rooms.commands import CreateGroup
from actors.rooms.events import GroupCreated
from actors.store import EventStore
from chatto.errors import ConflictError, InvalidInputError, NotFoundError


@attrs.frozen
class GroupRenamed(Event):
    TYPE: ClassVar[str] = "group.renamed"
    name: str


@attrs.frozen
class GroupDeleted(Event):
    TYPE: ClassVar[str] = "group.deleted"


@attrs.frozen
class RenameGroup:
    name: str


@attrs.frozen
class DeleteGroup:
    pass


def check_group_name(name: str) -> str:
    name = name.strip()
    if not 1 <= len(name) <= 80:
        raise InvalidInputError("group name must be 1 to 80 characters")
    return name


class GroupActor(EntityActor):
    """A room group: a name rooms can be filed under."""

    def __init__(self, group_id: str, store: EventStore) -> None:
        super().__init__(EntityRef("group", group_id), store)
        self.exists = False
        self.deleted = False
        self.name = ""

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, GroupCreated):
            self.exists, self.name = True, event.name
        elif isinstance(event, GroupRenamed):
            self.name = event.name
        elif isinstance(event, GroupDeleted):
            self.deleted = True

    def decide(self, command: Any) -> Decision:
        if isinstance(command, CreateGroup):
            if self.exists:
                raise ConflictError("group already exists")
            return Decision([GroupCreated(check_group_name(command.name), command.created_by)])
        if not self.exists or self.deleted:
            raise NotFoundError("no such room group")
        if isinstance(command, RenameGroup):
            name = check_group_name(command.name)
            return Decision([GroupRenamed(name)] if name != self.name else [])
        if isinstance(command, DeleteGroup):
            return Decision([GroupDeleted()])
        raise InvalidInputError(f"group actor cannot handle {type(command).__name__}")
