"""Resolvers for unread state: ``Room.unreadCount`` and friends, ``Query.unread``.

Only members get figures (null otherwise), so a non-member learns nothing a
missing room would not say; DMs are already invisible to outsiders
(``visible_room``). One marker read per room per request (``_unread``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import ObjectType, QueryType

from actors.rooms.directory import RoomView
from chatto.gql.rooms import viewer_of
from chatto.messaging.unread import Unread

if TYPE_CHECKING:
    from chatto.gql.context import Info

unread_query = QueryType()
unread_room = ObjectType("Room")
unread_summary = ObjectType("UnreadSummary")

_MEMO = "unread"


async def _unread(room: RoomView, info: Info) -> Unread | None:
    """The viewer's state in ``room``, read once per request; None for non-members."""
    me = viewer_of(info).id
    if me not in room.members:
        return None
    memo: dict[str, Unread] = info.context.extra.setdefault(_MEMO, {})
    state = memo.get(room.id)
    if state is None:
        state = await info.context.services.messaging.markers.unread(me, room)
        memo[room.id] = state
    return state


@unread_room.field("unreadCount")
async def resolve_unread_count(room: RoomView, info: Info) -> int | None:
    state = await _unread(room, info)
    return None if state is None else state.count


@unread_room.field("mentionCount")
async def resolve_mention_count(room: RoomView, info: Info) -> int | None:
    state = await _unread(room, info)
    return None if state is None else state.mentions


@unread_room.field("hasUnread")
async def resolve_has_unread(room: RoomView, info: Info) -> bool | None:
    state = await _unread(room, info)
    return None if state is None else state.count > 0


@unread_query.field("unread")
async def resolve_unread(_obj: Any, info: Info) -> list[tuple[RoomView, Unread]]:
    rooms = await info.context.services.messaging.markers.rooms_with_unread(viewer_of(info).id)
    memo: dict[str, Unread] = info.context.extra.setdefault(_MEMO, {})
    memo.update((room.id, state) for room, state in rooms)
    return rooms


@unread_summary.field("total")
def resolve_total(rooms: list[tuple[RoomView, Unread]], _info: Info) -> int:
    return sum(state.count for _room, state in rooms)


@unread_summary.field("mentionTotal")
def resolve_mention_total(rooms: list[tuple[RoomView, Unread]], _info: Info) -> int:
    return sum(state.mentions for _room, state in rooms)


@unread_summary.field("rooms")
def resolve_unread_rooms(rooms: list[tuple[RoomView, Unread]], _info: Info) -> list[RoomView]:
    return [room for room, _state in rooms]
