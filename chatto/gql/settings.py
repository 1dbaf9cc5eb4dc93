"""Resolvers for server settings and the sidebar layout: ``updateServerSettings``,
``setServerLogo``, ``removeServerLogo``, room group renames, deletions and
ordering, ``ServerInfo.logoUrl``, ``RoomGroup.position``/``rooms`` and
``Room.position``. ``server.manage`` is checked by ``@requires`` first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType

from actors.rooms.directory import GroupView, RoomView
from chatto.errors import InvalidInputError
from chatto.messaging.attachments import Upload
from chatto.server_settings import ServerSettings
from chatto.services import Services

if TYPE_CHECKING:
    from chatto.gql.context import Info

settings_mutation = MutationType()
settings_server_info = ObjectType("ServerInfo")
group_type = ObjectType("RoomGroup")
room_position = ObjectType("Room")


def _settings(info: Info) -> ServerSettings:
    return ServerSettings(info.context.services)


def channels_of(services: Services, group_id: str) -> list[RoomView]:
    """The group's live channels ("" = ungrouped) in sidebar order."""
    view = services.server_view
    order = view.room_order.get(group_id, ())
    rooms = services.messaging.rooms.rooms.values()
    found = [r for r in rooms if r.kind == "channel" and not r.archived and r.group_id == group_id]
    return sorted(found, key=lambda r: (view.position(order, r.id), r.name))


@settings_server_info.field("logoUrl")
def resolve_logo_url(services: Services, _info: Info) -> str | None:
    return ServerSettings(services).logo_url()


@settings_mutation.field("updateServerSettings")
async def resolve_update(
    _obj: Any, info: Info, name: str, description: str | None = ""
) -> Services:
    await _settings(info).update(name, description or "")
    return info.context.services


@settings_mutation.field("setServerLogo")
async def resolve_set_logo(_obj: Any, info: Info, file: Any) -> Services:
    if not isinstance(file, Upload):
        raise InvalidInputError("file must be sent as a multipart upload")
    await _settings(info).set_logo(file)
    return info.context.services


@settings_mutation.field("removeServerLogo")
async def resolve_remove_logo(_obj: Any, info: Info) -> Services:
    await _settings(info).remove_logo()
    return info.context.services


@settings_mutation.field("renameRoomGroup")
async def resolve_rename_group(_obj: Any, info: Info, groupId: str, name: str) -> GroupView:
    await _settings(info).rename_group(groupId, name)
    return info.context.services.messaging.rooms.groups[groupId]


@settings_mutation.field("deleteRoomGroup")
async def resolve_delete_group(_obj: Any, info: Info, groupId: str) -> bool:
    await _settings(info).delete_group(groupId)
    return True


@settings_mutation.field("reorderRoomGroups")
async def resolve_reorder_groups(_obj: Any, info: Info, ids: list[str]) -> list[GroupView]:
    await _settings(info).order_groups(ids)
    services = info.context.services
    view, groups = services.server_view, services.messaging.rooms.groups.values()
    return sorted(groups, key=lambda g: (view.position(view.group_order, g.id), g.name))


@settings_mutation.field("reorderRooms")
async def resolve_reorder_rooms(
    _obj: Any, info: Info, roomIds: list[str], groupId: str | None = None
) -> list[RoomView]:
    await _settings(info).order_rooms(groupId or "", roomIds)
    return channels_of(info.context.services, groupId or "")


@group_type.field("position")
def resolve_group_position(group: GroupView, info: Info) -> int:
    view = info.context.services.server_view
    return view.position(view.group_order, group.id)


@group_type.field("rooms")
def resolve_group_rooms(group: GroupView, info: Info) -> list[RoomView]:
    return channels_of(info.context.services, group.id)


@room_position.field("position")
def resolve_room_position(room: RoomView, info: Info) -> int:
    view = info.context.services.server_view
    return view.position(view.room_order.get(room.group_id, ()), room.id)
