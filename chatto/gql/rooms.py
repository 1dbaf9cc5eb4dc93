"""Resolvers for rooms: queries, the ``Room`` type and room mutations.

Permissions are checked by the schema's ``@requires`` wrapper before these
run; here only visibility (DMs are invisible to non-participants, owners
included) and membership are checked.
"""

from __future__ import annotations

import datetime
from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType, QueryType

from actors.rooms.directory import MessageView, RoomView
from actors.users.directory import UserRecord
from chatto.errors import ForbiddenError, InvalidInputError, UnauthenticatedError
from chatto.messaging.service import Page, encode_cursor, require_member

if TYPE_CHECKING:
    from chatto.gql.context import Info

room_query = QueryType()
room_mutation = MutationType()
room_type = ObjectType("Room")
event_page = ObjectType("EventPage")


def viewer_of(info: Info) -> UserRecord:
    viewer = info.context.viewer
    if viewer is None:
        raise UnauthenticatedError("authentication required")
    return viewer


def visible_room(info: Info, room_id: str) -> RoomView | None:
    viewer = viewer_of(info)
    room = info.context.services.messaging.rooms.rooms.get(room_id)
    if room is None or (room.kind == "dm" and viewer.id not in room.members):
        return None  # a DM is invisible to everyone outside it, owners included
    return room


def moderated_room(info: Info, room_id: str) -> tuple[UserRecord, RoomView]:
    """A room the viewer may manage (the permission was checked by @requires)."""
    viewer = viewer_of(info)
    room = visible_room(info, room_id)
    if room is None:
        raise ForbiddenError("no such room, or not yours to manage")
    return viewer, room


# --- queries ----------------------------------------------------------------------
@room_query.field("rooms")
def resolve_rooms(_obj: Any, info: Info, includeArchived: bool | None = False) -> list[RoomView]:
    rooms = info.context.services.messaging.rooms.rooms.values()
    return sorted(
        (r for r in rooms if r.kind == "channel" and (includeArchived or not r.archived)),
        key=lambda r: r.name,
    )


@room_query.field("myRooms")
def resolve_my_rooms(_obj: Any, info: Info) -> list[RoomView]:
    directory = info.context.services.messaging.rooms
    ids = directory.rooms_of(viewer_of(info).id)
    return sorted((directory.rooms[i] for i in ids), key=lambda r: (r.kind, r.name, r.id))


@room_query.field("room")
def resolve_room(_obj: Any, info: Info, id: str) -> RoomView | None:
    return visible_room(info, id)


@room_query.field("roomGroups")
def resolve_groups(_obj: Any, info: Info) -> list[Any]:
    services = info.context.services
    order = services.server_view.group_order
    groups = services.messaging.rooms.groups.values()
    return sorted(groups, key=lambda g: (services.server_view.position(order, g.id), g.name))


@room_query.field("presence")
async def resolve_presence(_obj: Any, info: Info, userIds: list[str]) -> list[dict[str, str]]:
    if len(userIds) > 100:
        raise InvalidInputError("at most 100 users per presence query")
    live = info.context.services.messaging.live
    return [{"userId": u, "status": await live.presence(u)} for u in userIds]


# --- Room --------------------------------------------------------------------------
@room_type.field("kind")
def resolve_kind(room: RoomView, _info: Info) -> str:
    return room.kind.upper()


@room_type.field("name")
def resolve_room_name(room: RoomView, info: Info) -> str:
    if room.kind != "dm":
        return room.name
    users = info.context.services.directory
    names = [u.login for p in room.participants if (u := users.get(p)) is not None]
    return ", ".join(sorted(names)) or "Deleted User"


@room_type.field("readOnly")
def resolve_read_only(room: RoomView, info: Info) -> bool:
    """True when the viewer may not post here (e.g. #announcements)."""
    perms = info.context.services.permissions
    return not perms.allowed(viewer_of(info), "message.post", room.id)


@room_type.field("group")
def resolve_group(room: RoomView, info: Info) -> Any:
    return info.context.services.messaging.rooms.groups.get(room.group_id)


@room_type.field("memberCount")
def resolve_member_count(room: RoomView, _info: Info) -> int:
    return len(room.members)


@room_type.field("isMember")
def resolve_is_member(room: RoomView, info: Info) -> bool:
    return viewer_of(info).id in room.members


@room_type.field("events")
async def resolve_events(
    room: RoomView,
    info: Info,
    before: str | None = None,
    after: str | None = None,
    limit: int | None = None,
    threadRootId: str | None = None,
) -> Page:
    messaging = info.context.services.messaging
    require_member(messaging.rooms, room.id, viewer_of(info).id)
    return await messaging.page(room.id, before, after, limit, threadRootId or "")


@room_type.field("eventsAround")
async def resolve_events_around(
    room: RoomView, info: Info, eventId: str, limit: int | None = None
) -> Page:
    messaging = info.context.services.messaging
    require_member(messaging.rooms, room.id, viewer_of(info).id)
    return await messaging.around(room.id, eventId, limit)


@room_type.field("readMarker")
async def resolve_read_marker(
    room: RoomView, info: Info, threadRootId: str | None = None
) -> str | None:
    return await info.context.services.messaging.read_marker(
        viewer_of(info).id, room.id, threadRootId or ""
    )


@room_type.field("event")
async def resolve_event(room: RoomView, info: Info, id: str) -> MessageView | None:
    """One message for a deep link: members only, null if the room has no such id."""
    messaging = info.context.services.messaging
    require_member(messaging.rooms, room.id, viewer_of(info).id)
    return await messaging.cold.message(room.id, id)


@event_page.field("hasOlder")
def resolve_has_older(page: Page, _info: Info) -> bool:
    return page.has_older


@event_page.field("hasNewer")
def resolve_has_newer(page: Page, _info: Info) -> bool:
    return page.has_newer


@event_page.field("startCursor")
def resolve_start(page: Page, _info: Info) -> str | None:
    return encode_cursor(page.events[0].seq) if page.events else None


@event_page.field("endCursor")
def resolve_end(page: Page, _info: Info) -> str | None:
    return encode_cursor(page.events[-1].seq) if page.events else None


# --- mutations ---------------------------------------------------------------------
@room_mutation.field("createRoom")
async def resolve_create_room(
    _obj: Any, info: Info, name: str, topic: str = "", groupId: str | None = None
) -> RoomView:
    viewer = viewer_of(info)
    messaging = info.context.services.messaging
    return await messaging.create_room(viewer.id, name, topic or "", groupId or "")


@room_mutation.field("updateRoom")
async def resolve_update_room(
    _obj: Any, info: Info, roomId: str, name: str, topic: str = "", groupId: str | None = None
) -> RoomView:
    viewer, room = moderated_room(info, roomId)
    return await info.context.services.messaging.update_room(
        viewer.id, room.id, name, topic or "", groupId or ""
    )


@room_mutation.field("archiveRoom")
async def resolve_archive(_obj: Any, info: Info, roomId: str, archived: bool) -> RoomView:
    viewer, room = moderated_room(info, roomId)
    return await info.context.services.messaging.archive(viewer.id, room.id, archived)


@room_mutation.field("joinRoom")
async def resolve_join(_obj: Any, info: Info, roomId: str) -> RoomView:
    if visible_room(info, roomId) is None:
        raise ForbiddenError("no such room")
    return await info.context.services.messaging.join(viewer_of(info).id, roomId)


@room_mutation.field("leaveRoom")
async def resolve_leave(_obj: Any, info: Info, roomId: str) -> bool:
    await info.context.services.messaging.leave(viewer_of(info).id, roomId)
    return True


def _expiry(expires_at: str | None) -> int:
    if not expires_at:
        return 0
    try:
        when = datetime.datetime.fromisoformat(expires_at)
    except ValueError:
        raise InvalidInputError("expiresAt must be an ISO 8601 date-time") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return int(when.timestamp() * 1000)


@room_mutation.field("banMember")
async def resolve_ban(
    _obj: Any, info: Info, roomId: str, userId: str, reason: str, expiresAt: str | None = None
) -> bool:
    viewer, room = moderated_room(info, roomId)
    await info.context.services.messaging.ban(
        viewer.id, room.id, userId, reason, _expiry(expiresAt)
    )
    return True


@room_mutation.field("unbanMember")
async def resolve_unban(_obj: Any, info: Info, roomId: str, userId: str) -> bool:
    viewer, room = moderated_room(info, roomId)
    await info.context.services.messaging.unban(viewer.id, room.id, userId)
    return True


@room_mutation.field("createRoomGroup")
async def resolve_create_group(_obj: Any, info: Info, name: str) -> Any:
    viewer = viewer_of(info)
    return await info.context.services.messaging.create_group(viewer.id, name)


@room_mutation.field("startDM")
async def resolve_start_dm(_obj: Any, info: Info, participantIds: list[str]) -> RoomView:
    return await info.context.services.messaging.start_dm(viewer_of(info).id, participantIds)
