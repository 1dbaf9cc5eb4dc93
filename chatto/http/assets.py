"""``GET /assets/attachments/<room>/<id>``: members only, sandboxed if active."""

from __future__ import annotations

from urllib.parse import quote

from chatto.errors import ChattoError
from chatto.http.asgi import Scope, Send, header, respond, respond_error
from chatto.messaging.attachments import ACTIVE_TYPES
from chatto.services import Services


async def handle_attachment(scope: Scope, send: Send, services: Services) -> None:
    parts = scope["path"].split("/")
    if len(parts) != 5 or scope["method"] != "GET":
        await respond_error(send, 404, "NOT_FOUND", "no such attachment")
        return
    room_id, att_id = parts[3], parts[4]
    auth = await services.authn.from_headers(
        header(scope, b"authorization"), header(scope, b"cookie")
    )
    room = services.messaging.rooms.rooms.get(room_id)
    if auth.user is None or room is None or auth.user.id not in room.members:
        # Non-members cannot tell a missing attachment from a forbidden one.
        await respond_error(send, 404, "NOT_FOUND", "no such attachment")
        return
    try:
        att, data = await services.attachments.read(room_id, att_id)
        name = await services.attachments.name(att) or "attachment"
    except ChattoError:
        await respond_error(send, 404, "NOT_FOUND", "no such attachment")
        return
    active = att.content_type in ACTIVE_TYPES
    disposition = "attachment" if active else "inline"
    extra = [
        (b"content-disposition", f"{disposition}; filename*=UTF-8''{quote(name)}".encode()),
        (b"cache-control", b"private, max-age=3600"),
    ]
    if active:
        extra.append((b"content-security-policy", b"sandbox"))
    await respond(send, 200, data, att.content_type.encode(), extra)


async def handle_avatar(scope: Scope, send: Send, services: Services) -> None:
    """``GET /assets/avatars/<user>``: any signed-in user may see avatars."""
    parts = scope["path"].split("/")
    auth = await services.authn.from_headers(
        header(scope, b"authorization"), header(scope, b"cookie")
    )
    user = services.directory.get(parts[3]) if len(parts) == 4 else None
    if auth.user is None or user is None or user.avatar is None:
        await respond_error(send, 404, "NOT_FOUND", "no such avatar")
        return
    try:
        data = await services.avatars.read(user.id, user.avatar)
    except ChattoError:
        await respond_error(send, 404, "NOT_FOUND", "no such avatar")
        return
    await respond(
        send, 200, data, user.avatar[0].encode(), [(b"cache-control", b"private, max-age=86400")]
    )
