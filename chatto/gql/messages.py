"""Resolvers for messages: the ``Message`` type and message mutations."""

from __future__ import annotations

import datetime
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType

from actors.rooms.directory import AttachmentView, MessageView, RoomDirectory
from actors.rooms.reactions import reaction_emoji
from actors.rooms.rules import check_client_key
from chatto.errors import ForbiddenError, InvalidInputError
from chatto.gql.context import NotReady
from chatto.gql.rooms import viewer_of
from chatto.messaging.attachments import Upload
from chatto.messaging.keys import NotCached
from chatto.messaging.service import encode_cursor, require_member

if TYPE_CHECKING:
    from chatto.gql.context import Info

# Retracting someone else's message (the schema's @selfOr on retractMessage).
MANAGE_MESSAGES = "message.manage"
# @room/@here in a channel (chatto/messaging/mentions.py); without it they stay text.
MENTION_ROOM = "message.mention-room"

message_type = ObjectType("Message")
attachment_type = ObjectType("Attachment")
reaction_type = ObjectType("Reaction")
message_mutation = MutationType()


def _iso(ms: int) -> str:
    return datetime.datetime.fromtimestamp(ms / 1000, tz=datetime.UTC).isoformat()


@message_type.field("roomId")
def resolve_room_id(msg: MessageView, _info: Info) -> str:
    return msg.room_id


@message_type.field("authorId")
def resolve_author_id(msg: MessageView, _info: Info) -> str:
    return msg.author_id


@message_type.field("author")
def resolve_author(msg: MessageView, info: Info) -> Any:
    return info.context.services.directory.get(msg.author_id)


@message_type.field("body")
def resolve_body(msg: MessageView, info: Info) -> str | Awaitable[str | None] | None:
    # Synchronous when the author's key is in memory (nearly always): a page
    # of 50 bodies then makes no coroutine, and a live event can be rendered
    # in the publisher's call (``sync_only``, gql/fanout.py).
    keys = info.context.services.messaging.keys
    opened = keys.open_cached(msg)
    if not isinstance(opened, NotCached):
        return opened
    if info.context.sync_only:
        raise NotReady("body key not in memory")
    return keys.open_body(msg)


@message_type.field("createdAt")
def resolve_created(msg: MessageView, _info: Info) -> str:
    return _iso(msg.at_ms)


@message_type.field("editedAt")
def resolve_edited(msg: MessageView, _info: Info) -> str | None:
    return _iso(msg.edited_ms) if msg.edited_ms else None


@message_type.field("inReplyTo")
def resolve_in_reply_to(msg: MessageView, _info: Info) -> str | None:
    return msg.in_reply_to or None


@message_type.field("threadRootId")
def resolve_thread_root(msg: MessageView, _info: Info) -> str | None:
    return msg.thread_root or None


@message_type.field("replyCount")
def resolve_reply_count(msg: MessageView, _info: Info) -> int:
    return msg.reply_count


@message_type.field("reactions")
def resolve_reactions(msg: MessageView, _info: Info) -> list[dict[str, Any]]:
    return [
        {
            "shortcode": code,
            "emoji": reaction_emoji(code),
            "count": len(users),
            "userIds": list(users),
            "users": users,
        }
        for code, users in sorted(msg.reactions.items())
    ]


@reaction_type.field("mine")
def resolve_reaction_mine(reaction: dict[str, Any], info: Info) -> bool:
    # Asked only when selected: a live event whose document does not select
    # it does not depend on the viewer, so its result is shared (gql/fanout.py).
    return viewer_of(info).id in reaction["users"]


@message_type.field("attachments")
def resolve_attachments(
    msg: MessageView, info: Info
) -> list[AttachmentView] | Awaitable[list[AttachmentView]]:
    # The room's attachments are in its history index: synchronous when it is
    # in memory (a page or live event of an active room), else loaded first.
    if not msg.attachments:
        return []
    rooms = info.context.services.messaging.rooms
    room = rooms.rooms.get(msg.room_id)
    if room is None:
        return []
    if room.resident is not None:
        return _listed(room.attachments, msg)
    if info.context.sync_only:
        raise NotReady("room index not in memory")
    return _attachments_loaded(rooms, msg)


def _listed(atts: dict[str, AttachmentView], msg: MessageView) -> list[AttachmentView]:
    return [atts[a] for a in msg.attachments if a in atts and not atts[a].removed]


async def _attachments_loaded(rooms: RoomDirectory, msg: MessageView) -> list[AttachmentView]:
    await rooms.ensure(msg.room_id)
    room = rooms.rooms.get(msg.room_id)
    return _listed(room.attachments, msg) if room is not None else []


@attachment_type.field("name")
async def resolve_attachment_name(att: AttachmentView, info: Info) -> str | None:
    return await info.context.services.attachments.name(att)


@attachment_type.field("contentType")
def resolve_content_type(att: AttachmentView, _info: Info) -> str:
    return att.content_type


@attachment_type.field("url")
def resolve_url(att: AttachmentView, _info: Info) -> str:
    return f"/assets/attachments/{att.room_id}/{att.id}"


@message_mutation.field("uploadAttachment")
async def resolve_upload(_obj: Any, info: Info, roomId: str, file: Any) -> AttachmentView:
    viewer = viewer_of(info)
    services = info.context.services
    require_member(services.messaging.rooms, roomId, viewer.id)
    if not isinstance(file, Upload):
        raise InvalidInputError("file must be sent as a multipart upload")
    return await services.attachments.upload(viewer.id, roomId, file)


@message_type.field("cursor")
def resolve_cursor(msg: MessageView, _info: Info) -> str:
    return encode_cursor(msg.seq)


# --- mutations -------------------------------------------------------------------
def _member(info: Info, room_id: str) -> str:
    viewer = viewer_of(info)
    require_member(info.context.services.messaging.rooms, room_id, viewer.id)
    return viewer.id


@message_mutation.field("postMessage")
async def resolve_post(
    _obj: Any,
    info: Info,
    roomId: str,
    body: str,
    inReplyTo: str | None = None,
    threadRootEventId: str | None = None,
    echo: bool | None = False,
    attachmentIds: list[str] | None = None,
    clientMessageId: str | None = None,
) -> MessageView:
    viewer = viewer_of(info)
    services = info.context.services
    require_member(services.messaging.rooms, roomId, viewer.id)
    await services.limiter.hit("messages_per_user_room", f"{viewer.id}:{roomId}")
    if threadRootEventId:
        services.permissions.require(viewer, "message.post-in-thread", roomId)
    if echo:
        services.permissions.require(viewer, "message.echo", roomId)
    return await services.messaging.post(
        viewer.id,
        roomId,
        body,
        inReplyTo or "",
        threadRootEventId or "",
        bool(echo),
        tuple(attachmentIds or ()),
        check_client_key(clientMessageId) if clientMessageId is not None else "",
        services.permissions.allowed(viewer, MENTION_ROOM, roomId),
    )


@message_mutation.field("editMessage")
async def resolve_edit(_obj: Any, info: Info, roomId: str, eventId: str, body: str) -> MessageView:
    user_id = _member(info, roomId)
    services = info.context.services
    may_room = services.permissions.allowed(viewer_of(info), MENTION_ROOM, roomId)
    return await services.messaging.edit(user_id, roomId, eventId, body, may_room)


@message_mutation.field("retractMessage")
async def resolve_retract(_obj: Any, info: Info, roomId: str, eventId: str) -> bool:
    viewer = viewer_of(info)
    services = info.context.services
    messaging = services.messaging
    room = messaging.rooms.rooms.get(roomId)
    if room is None or (room.kind == "dm" and viewer.id not in room.members):
        raise ForbiddenError("no such room")
    msg = await messaging.message(roomId, eventId)
    moderator = msg.author_id != viewer.id
    if moderator:
        # The schema's @selfOr(permission: "message.manage"); a channel's
        # creator holds it there unless denied, and inside DMs it is always
        # denied: the DM privacy boundary.
        services.permissions.require(viewer, MANAGE_MESSAGES, roomId)
    elif viewer.id not in room.members:
        raise ForbiddenError("join the room first")
    await messaging.retract(viewer.id, roomId, eventId, moderator)
    return True


@message_mutation.field("react")
async def resolve_react(
    _obj: Any, info: Info, roomId: str, eventId: str, shortcode: str, add: bool | None = True
) -> MessageView:
    user_id = _member(info, roomId)
    messaging = info.context.services.messaging
    return await messaging.react(user_id, roomId, eventId, shortcode, add is not False)


@message_mutation.field("markRead")
async def resolve_mark_read(
    _obj: Any, info: Info, roomId: str, eventId: str, threadRootId: str | None = None
) -> bool:
    user_id = _member(info, roomId)
    await info.context.services.messaging.mark_read(user_id, roomId, eventId, threadRootId or "")
    return True


@message_mutation.field("setTyping")
async def resolve_typing(_obj: Any, info: Info, roomId: str, typing: bool) -> bool:
    user_id = _member(info, roomId)
    await info.context.services.messaging.live.typing(roomId, user_id, typing)
    return True


@message_mutation.field("setPresence")
async def resolve_set_presence(_obj: Any, info: Info, status: str) -> bool:
    await info.context.services.messaging.live.set_presence(viewer_of(info).id, status)
    return True
