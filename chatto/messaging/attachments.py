"""Attachments: sealed at rest in the object store, served only to members.

Bytes are sealed with the uploader's message-body DEK (so deleting the
account shreds them too) with an AAD naming the attachment, room, author
and epoch; the file name is sealed in the ``room.attachment_uploaded`` event.
Active document types are served with ``Content-Security-Policy: sandbox``.
"""

from __future__ import annotations

import base64

import attrs

from actors.ids import new_id
from actors.projector import Projector
from actors.room_directory import AttachmentView, RoomDirectory
from actors.rooms import RegisterAttachment
from actors.runtime import ActorSystem
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import OBJECTS
from chatto.crypto import aad, aead
from chatto.errors import InvalidInputError, NotFoundError
from chatto.messaging.keys import BodyKeys

ACTIVE_TYPES = frozenset(
    {"text/html", "application/xhtml+xml", "image/svg+xml", "text/xml", "application/xml"}
)


@attrs.frozen
class Upload:
    """A file from a GraphQL multipart request."""

    filename: str
    content_type: str
    data: bytes = attrs.field(repr=False)


def attachment_object(room_id: str, attachment_id: str) -> str:
    return f"att.{room_id}.{attachment_id}"


def _context(att_id: str, room_id: str, author: str, epoch: int, part: str) -> bytes:
    return aad.encode(
        "attachment",
        1,
        [
            ("attachment_id", att_id),
            ("room_id", room_id),
            ("author_id", author),
            ("epoch", epoch),
            ("part", part),
        ],
    )


class Attachments:
    """Upload and open attachments."""

    def __init__(
        self,
        actors: ActorSystem,
        projector: Projector,
        rooms: RoomDirectory,
        keys: BodyKeys,
        bridge: NatsBridge,
        max_bytes: int,
    ) -> None:
        self._actors = actors
        self._projector = projector
        self._rooms = rooms
        self._keys = keys
        self._bridge = bridge
        self.max_bytes = max_bytes

    async def upload(self, author: str, room_id: str, file: Upload) -> AttachmentView:
        if len(file.data) > self.max_bytes:
            raise InvalidInputError(f"file is larger than {self.max_bytes} bytes")
        if not file.data:
            raise InvalidInputError("file is empty")
        key = await self._keys.author_key(author)
        att_id = new_id()
        ctx = _context(att_id, room_id, author, key.epoch, "bytes")
        await self._bridge.obj_put(
            OBJECTS, attachment_object(room_id, att_id), aead.seal(key.key, file.data, ctx)
        )
        name_ctx = _context(att_id, room_id, author, key.epoch, "name")
        name = base64.urlsafe_b64encode(
            aead.seal(key.key, file.filename[:255].encode(), name_ctx)
        ).decode()
        ctype = (file.content_type or "application/octet-stream").split(";")[0].strip().lower()
        cmd = RegisterAttachment(author, att_id, name, ctype[:100], len(file.data), key.epoch)
        done = await self._actors.ask("room", room_id, cmd)
        await self._projector.wait_for(done.last_seq)
        return self._rooms.attachments[att_id]

    async def name(self, att: AttachmentView) -> str | None:
        key = await self._keys.key_for(att.author_id, att.epoch)
        if key is None:
            return None
        ctx = _context(att.id, att.room_id, att.author_id, att.epoch, "name")
        return aead.open_sealed(key, base64.urlsafe_b64decode(att.name_enc), ctx).decode()

    async def read(self, room_id: str, att_id: str) -> tuple[AttachmentView, bytes]:
        att = self._rooms.attachments.get(att_id)
        if att is None or att.room_id != room_id or att.removed:
            raise NotFoundError("no such attachment")
        blob = await self._bridge.obj_get(OBJECTS, attachment_object(room_id, att_id))
        key = await self._keys.key_for(att.author_id, att.epoch)
        if blob is None or key is None:
            raise NotFoundError("no such attachment")
        ctx = _context(att.id, room_id, att.author_id, att.epoch, "bytes")
        return att, aead.open_sealed(key, blob, ctx)
