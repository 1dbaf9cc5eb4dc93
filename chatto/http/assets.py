"""``GET /assets/attachments/<room>/<id>`` and ``/assets/avatars/<user>``.

The uploader chooses the content type, so only an allow-list of passive
types is served inline: raster images (not SVG: it runs scripts), audio,
video, PDF and plain text. Anything else, however it is spelled
(``application/x-anything+xml``, ``text/xsl``, ...), is a download
(``Content-Disposition: attachment``) under ``Content-Security-Policy:
sandbox``, so a browser that opens it anyway runs nothing in our origin.
``X-Content-Type-Options: nosniff`` is on every response, so a browser
cannot guess a more active type than the one we send.
"""

from __future__ import annotations

import re
from urllib.parse import quote

from chatto.errors import ChattoError
from chatto.http.asgi import Scope, Send, header, respond, respond_error
from chatto.services import Services

IMAGE_TYPES = frozenset(
    {"image/png", "image/jpeg", "image/gif", "image/webp", "image/avif", "image/bmp"}
)
INLINE_TYPES = IMAGE_TYPES | {
    "audio/mpeg",
    "audio/ogg",
    "audio/wav",
    "audio/webm",
    "audio/mp4",
    "audio/aac",
    "audio/flac",
    "video/mp4",
    "video/webm",
    "video/ogg",
    "application/pdf",
    "text/plain",
}
# A well-formed type/subtype; anything else (spaces, CR/LF, quotes) is sent
# as octet-stream rather than echoed into a header.
_MIME = re.compile(r"[a-z0-9][a-z0-9!#$&^_.+-]{0,63}/[a-z0-9][a-z0-9!#$&^_.+-]{0,63}")
SANDBOX = (b"content-security-policy", b"sandbox")


def serving_headers(content_type: str, filename: str) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """(Content-Type, extra headers) for a stored file of ``content_type``."""
    ctype = content_type.split(";")[0].strip().lower()
    name = f"filename*=UTF-8''{quote(filename)}"
    if ctype in INLINE_TYPES:
        return ctype.encode(), [(b"content-disposition", f"inline; {name}".encode())]
    if not _MIME.fullmatch(ctype):
        ctype = "application/octet-stream"
    return ctype.encode(), [
        (b"content-disposition", f"attachment; {name}".encode()),
        SANDBOX,
    ]


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
    ctype, extra = serving_headers(att.content_type, name)
    await respond(send, 200, data, ctype, [*extra, (b"cache-control", b"private, max-age=3600")])


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
    # Uploads are checked against the same image types; this guards avatars
    # recorded by older versions or written straight into the stream.
    ctype = user.avatar[0] if user.avatar[0] in IMAGE_TYPES else "application/octet-stream"
    extra = [SANDBOX, (b"cache-control", b"private, max-age=86400")]
    await respond(send, 200, data, ctype.encode(), extra)
