"""The server entity: its profile (name, description, logo) and the sidebar's
order of room groups and rooms, as actor and read model."""

from __future__ import annotations

from typing import Any, ClassVar

import attrs

from actors.entity import Decision, EntityActor
from actors.events import SERVER, Event, ProbeRecorded, Recorded, ServerProfileChanged
from actors.store import EventStore
from chatto.errors import InvalidInputError

MAX_NAME = 64
MAX_DESCRIPTION = 1000
MAX_ORDERED = 1000


@attrs.frozen
class ServerLogoSet(Event):
    """The logo object was replaced (``version`` names this upload)."""

    TYPE: ClassVar[str] = "server.logo_set"
    content_type: str
    version: str


@attrs.frozen
class ServerLogoRemoved(Event):
    TYPE: ClassVar[str] = "server.logo_removed"


@attrs.frozen
class GroupsOrdered(Event):
    """The sidebar order of room groups (ids not listed follow, by creation)."""

    TYPE: ClassVar[str] = "server.groups_ordered"
    group_ids: tuple[str, ...]


@attrs.frozen
class RoomsOrdered(Event):
    """The order of rooms inside a group ("" = the ungrouped rooms)."""

    TYPE: ClassVar[str] = "server.rooms_ordered"
    group_id: str
    room_ids: tuple[str, ...]


# Events every client must see live (``SERVER_UPDATED``/``GROUPS_UPDATED``),
# published on the hub's ``settings`` topic besides their entity's.
SETTINGS_EVENTS = (ServerProfileChanged, ServerLogoSet, ServerLogoRemoved)
LAYOUT_EVENTS = (GroupsOrdered, RoomsOrdered)
SETTINGS_TOPIC = "settings"


def live_kind(rec: Recorded) -> str | None:
    """``SERVER_UPDATED``, ``GROUPS_UPDATED`` or None for other events."""
    event = rec.envelope.event
    if isinstance(event, SETTINGS_EVENTS):
        return "SERVER_UPDATED"
    if isinstance(event, LAYOUT_EVENTS) or rec.envelope.entity.kind == "group":
        return "GROUPS_UPDATED"
    return None


@attrs.frozen
class SetServerLogo:
    content_type: str
    version: str


@attrs.frozen
class RemoveServerLogo:
    pass


@attrs.frozen
class OrderGroups:
    group_ids: tuple[str, ...]


@attrs.frozen
class OrderRooms:
    group_id: str
    room_ids: tuple[str, ...]


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
        if isinstance(command, SetServerLogo):
            return Decision([ServerLogoSet(command.content_type, command.version)])
        if isinstance(command, RemoveServerLogo):
            return Decision([ServerLogoRemoved()])
        if isinstance(command, OrderGroups | OrderRooms):
            ids = command.group_ids if isinstance(command, OrderGroups) else command.room_ids
            if len(ids) > MAX_ORDERED or len(set(ids)) != len(ids):
                raise InvalidInputError(f"give at most {MAX_ORDERED} distinct ids")
            if isinstance(command, OrderGroups):
                return Decision([GroupsOrdered(command.group_ids)])
            return Decision([RoomsOrdered(command.group_id, command.room_ids)])
        raise InvalidInputError(f"server actor cannot handle {type(command).__name__}")


class ServerView:
    """Read model of the server profile (what queries read)."""

    snapshot_name = "server"
    snapshot_schema = 1

    def __init__(self, default_name: str) -> None:
        self.name = default_name
        self.description = ""
        self.probes = 0
        # (content type, version) of the logo, if one is set.
        self.logo: tuple[str, str] | None = None
        self.group_order: tuple[str, ...] = ()
        self.room_order: dict[str, tuple[str, ...]] = {}

    def apply(self, recorded: Recorded) -> None:
        event = recorded.envelope.event
        if isinstance(event, ServerProfileChanged):
            self.name, self.description = event.name, event.description
        elif isinstance(event, ProbeRecorded):
            self.probes += 1
        elif isinstance(event, ServerLogoSet):
            self.logo = (event.content_type, event.version)
        elif isinstance(event, ServerLogoRemoved):
            self.logo = None
        elif isinstance(event, GroupsOrdered):
            self.group_order = event.group_ids
        elif isinstance(event, RoomsOrdered):
            self.room_order[event.group_id] = event.room_ids

    def position(self, order: tuple[str, ...], item: str) -> int:
        """``item``'s place in ``order``; unlisted items come after every listed one."""
        try:
            return order.index(item)
        except ValueError:
            return len(order)

    def export_state(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "probes": self.probes,
            "logo": list(self.logo) if self.logo else None,
            "group_order": list(self.group_order),
            "room_order": {g: list(ids) for g, ids in self.room_order.items()},
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        # Snapshots from before logos and ordering lack those keys.
        self.name, self.description = str(state["name"]), str(state["description"])
        self.probes = int(state["probes"])
        logo = state.get("logo")
        self.logo = (str(logo[0]), str(logo[1])) if logo else None
        self.group_order = tuple(state.get("group_order") or ())
        orders = state.get("room_order") or {}
        self.room_order = {str(g): tuple(ids) for g, ids in orders.items()}
