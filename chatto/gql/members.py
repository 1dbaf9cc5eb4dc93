"""Resolvers for members: ``Room.members``, ``Query.members`` and ``Room.bans``.

Search and paging live in ``actors.users.search`` (login and display name
only, never emails; deleted accounts are not indexed). A room's members are
for its members: a channel's outsider is told to join, a DM's outsider never
gets the Room at all (``visible_room``). ``Room.bans`` is checked by
``@requires`` in the room itself, so a channel's creator may read it.
"""

from __future__ import annotations

import datetime
import time
from typing import TYPE_CHECKING, Any

from ariadne import ObjectType, QueryType

from actors.rooms.directory import RoomView
from actors.users.search import UserPage
from chatto.gql.rooms import viewer_of
from chatto.messaging.service import require_member

if TYPE_CHECKING:
    from chatto.gql.context import Info

members_query = QueryType()
members_room = ObjectType("Room")


def _page(page: UserPage) -> dict[str, Any]:
    return {"users": page.users, "endCursor": page.end_cursor, "hasMore": page.has_more}


@members_query.field("members")
async def resolve_directory(
    _obj: Any,
    info: Info,
    search: str | None = None,
    first: int | None = 50,
    after: str | None = None,
) -> dict[str, Any]:
    viewer_of(info)
    return _page(await info.context.services.directory.search.page(search, first, after))


@members_room.field("members")
async def resolve_room_members(
    room: RoomView,
    info: Info,
    search: str | None = None,
    first: int | None = 50,
    after: str | None = None,
) -> dict[str, Any]:
    require_member(info.context.services.messaging.rooms, room.id, viewer_of(info).id)
    search_index = info.context.services.directory.search
    # A copy: the set may change while the scan yields to other tasks.
    members = frozenset(room.members)
    return _page(await search_index.page(search, first, after, among=members))


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.UTC).isoformat()


@members_room.field("bans")
def resolve_bans(room: RoomView, info: Info) -> list[dict[str, Any]]:
    users = info.context.services.directory
    now_ms = time.time() * 1000
    out = []
    for uid, until in room.bans.items():
        if until and until <= now_ms:
            continue  # expired: the user may join again
        by, reason, at_ms = room.ban_details.get(uid, ("", "", 0))
        out.append(
            {
                "userId": uid,
                "user": users.get(uid),
                "reason": reason,
                "bannedBy": users.get(by) if by else None,
                "createdAt": _iso(at_ms),
                "expiresAt": _iso(until) if until else None,
                "_at": at_ms,
            }
        )
    return sorted(out, key=lambda b: (-b["_at"], b["userId"]))
