"""Resolvers for mentions, notifications and followed threads (issue #19).

Everything here acts on, or reads, the viewer's own data: another user's
notification id is answered exactly like an unknown one. Room arguments
pass the schema wrapper first (a DM the viewer is not in is a missing
room), then membership is required like every member-only field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType, QueryType

from actors.notifications.feed import Notice
from actors.rooms.directory import MessageView, RoomView
from chatto.gql.messages import resolve_created
from chatto.gql.rooms import viewer_of
from chatto.messaging.notifications import FollowedThread, NoticePage
from chatto.messaging.service import decode_cursor, encode_cursor, require_member

if TYPE_CHECKING:
    from chatto.gql.context import Info
    from chatto.messaging.notifications import Notifications

notify_query = QueryType()
notify_mutation = MutationType()
notification_type = ObjectType("Notification")
notice_page_type = ObjectType("NotificationPage")
followed_type = ObjectType("FollowedThread")
notify_room = ObjectType("Room")
notify_message = ObjectType("Message")

_FOLLOWED = "followed-threads"


def _service(info: Info) -> Notifications:
    return info.context.services.messaging.notifications


# --- queries ----------------------------------------------------------------------
@notify_query.field("notifications")
def resolve_notifications(
    _obj: Any, info: Info, first: int | None = None, after: str | None = None
) -> NoticePage:
    after_seq = decode_cursor(after) if after else None
    return _service(info).page(viewer_of(info).id, first, after_seq)


@notify_query.field("hasNotifications")
def resolve_has_notifications(_obj: Any, info: Info) -> bool:
    return _service(info).page(viewer_of(info).id, 1, None).items != []


@notify_query.field("notificationSettings")
def resolve_settings(_obj: Any, info: Info) -> dict[str, str]:
    return {"level": _service(info).feed.pref(viewer_of(info).id, "").level or "MENTIONS"}


@notify_query.field("followedThreads")
async def resolve_followed(_obj: Any, info: Info) -> list[FollowedThread]:
    return await _service(info).followed_threads(viewer_of(info).id)


@notify_query.field("hasUnreadFollowedThreads")
async def resolve_has_unread_threads(_obj: Any, info: Info) -> bool:
    threads = await _service(info).followed_threads(viewer_of(info).id)
    return any(t.unread for t in threads)


@notice_page_type.field("endCursor")
def resolve_end_cursor(page: NoticePage, _info: Info) -> str | None:
    return encode_cursor(page.items[-1].seq) if page.items else None


@notice_page_type.field("hasMore")
def resolve_has_more(page: NoticePage, _info: Info) -> bool:
    return page.has_more


# --- Notification -------------------------------------------------------------------
@notification_type.field("id")
def resolve_id(n: Notice, _info: Info) -> str:
    return n.message_id


@notification_type.field("roomId")
def resolve_room_id(n: Notice, _info: Info) -> str:
    return n.room_id


@notification_type.field("room")
def resolve_room(n: Notice, info: Info) -> RoomView | None:
    return info.context.services.messaging.rooms.rooms.get(n.room_id)


@notification_type.field("messageId")
def resolve_message_id(n: Notice, _info: Info) -> str:
    return n.message_id


@notification_type.field("message")
async def resolve_message(n: Notice, info: Info) -> MessageView | None:
    if not _service(info).visible(viewer_of(info).id, n):
        return None
    return await info.context.services.messaging.cold.message(n.room_id, n.message_id)


@notification_type.field("actorId")
def resolve_actor(n: Notice, _info: Info) -> str:
    return n.actor_id


@notification_type.field("threadRootId")
def resolve_thread_root(n: Notice, _info: Info) -> str | None:
    return n.thread_root or None


@notification_type.field("createdAt")
async def resolve_notice_created(n: Notice, info: Info) -> str | None:
    msg = await info.context.services.messaging.cold.message(n.room_id, n.message_id)
    return resolve_created(msg, info) if msg is not None else None


@notification_type.field("cursor")
def resolve_cursor(n: Notice, _info: Info) -> str:
    return encode_cursor(n.seq)


# --- settings -----------------------------------------------------------------------
def _preference(info: Info, room: RoomView) -> dict[str, Any]:
    me = viewer_of(info).id
    feed = _service(info).feed
    pref = feed.pref(me, room.id)
    return {
        "roomId": room.id,
        "level": pref.level or None,
        "muted": pref.muted,
        "effectiveLevel": feed.level(me, room),
    }


@notify_room.field("viewerNotificationPreference")
def resolve_room_preference(room: RoomView, info: Info) -> dict[str, Any] | None:
    if viewer_of(info).id not in room.members:
        return None
    return _preference(info, room)


@notify_room.field("unreadFollowedThreads")
async def resolve_room_unread_threads(room: RoomView, info: Info) -> int | None:
    me = viewer_of(info).id
    if me not in room.members:
        return None
    # Once per request: a sidebar asks this of every room.
    memo: dict[str, list[FollowedThread]] = info.context.extra.setdefault(_FOLLOWED, {})
    if me not in memo:
        memo[me] = await _service(info).followed_threads(me)
    return sum(1 for t in memo[me] if t.unread and t.room.id == room.id)


@notify_mutation.field("setServerNotificationLevel")
async def resolve_set_server_level(_obj: Any, info: Info, level: str) -> dict[str, str]:
    await _service(info).set_level(viewer_of(info).id, "", level, False)
    return {"level": level}


@notify_mutation.field("setRoomNotificationLevel")
async def resolve_set_room_level(
    _obj: Any, info: Info, roomId: str, level: str | None = None, muted: bool | None = False
) -> dict[str, Any]:
    me = viewer_of(info).id
    room = require_member(info.context.services.messaging.rooms, roomId, me)
    await _service(info).set_level(me, room.id, level or "", bool(muted))
    return _preference(info, room)


# --- dismissals -----------------------------------------------------------------------
@notify_mutation.field("dismissNotification")
async def resolve_dismiss(_obj: Any, info: Info, id: str) -> bool:
    await _service(info).dismiss(viewer_of(info).id, id)
    return True


@notify_mutation.field("dismissAllNotifications")
async def resolve_dismiss_all(_obj: Any, info: Info) -> int:
    return await _service(info).dismiss_all(viewer_of(info).id)


# --- threads ----------------------------------------------------------------------------
async def _follow(info: Info, room_id: str, root_id: str, follow: bool) -> MessageView:
    me = viewer_of(info).id
    require_member(info.context.services.messaging.rooms, room_id, me)
    return await _service(info).follow(me, room_id, root_id, follow)


@notify_mutation.field("followThread")
async def resolve_follow(_obj: Any, info: Info, roomId: str, threadRootId: str) -> MessageView:
    return await _follow(info, roomId, threadRootId, True)


@notify_mutation.field("unfollowThread")
async def resolve_unfollow(_obj: Any, info: Info, roomId: str, threadRootId: str) -> MessageView:
    return await _follow(info, roomId, threadRootId, False)


@followed_type.field("unreadCount")
def resolve_thread_unread(thread: FollowedThread, _info: Info) -> int:
    return thread.unread


# --- Message additions ---------------------------------------------------------------------
@notify_message.field("mentions")
def resolve_mentions(msg: MessageView, info: Info) -> list[str]:
    if msg.retracted:
        return []
    return list(_service(info).feed.mentions_of(msg.room_id, msg.seq)[0])


@notify_message.field("mentionsRoom")
def resolve_mentions_room(msg: MessageView, info: Info) -> bool:
    return not msg.retracted and _service(info).feed.mentions_of(msg.room_id, msg.seq)[1]


@notify_message.field("viewerFollowsThread")
def resolve_follows(msg: MessageView, info: Info) -> bool:
    return _service(info).feed.follows_thread(viewer_of(info).id, msg.room_id, msg.seq)


@notify_message.field("threadUnreadCount")
async def resolve_thread_unread_count(msg: MessageView, info: Info) -> int | None:
    me = viewer_of(info).id
    service = _service(info)
    room = info.context.services.messaging.rooms.rooms.get(msg.room_id)
    follows = service.feed.follows_thread(me, msg.room_id, msg.seq)
    if room is None or me not in room.members or not follows:
        return None
    return await service.thread_unread(me, room, msg.id)


BINDABLES = (
    notify_query,
    notify_mutation,
    notification_type,
    notice_page_type,
    followed_type,
    notify_room,
    notify_message,
)
