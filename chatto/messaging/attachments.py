"""Attachments: sealed at rest in the object store, served only to members.

Bytes are sealed with the uploader's message-body DEK (so deleting the
account shreds them too) with an AAD naming the attachment, room, author
and epoch; the file name is sealed in the ``room.attachment_uploaded`` event.
How a type is served (inline or download, sandboxed) is decided at the
HTTP edge, ``chatto/http/assets.py``, from an allow-list.
"""

from __future__ import annotations

import base64

import attrs

from actors.ids import new_id
from actors.projector import Projector
from actors.rooms.commands import RegisterAttachment
from actors.rooms.directory import AttachmentView, RoomDirectory
from actors.runtime import ActorSystem
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import OBJECTS
from chatto.crypto import aad, aead
from chatto.errors import InvalidInputError, NotFoundError
from chatto.messaging.keys import BodyKeys


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
        await self._rooms.ensure(room_id)
        att = self._rooms.attachment(room_id, att_id)
        if att is None:
            raise NotFoundError("no such room")  # deleted meanwhile
        return att

    async def name(self, att: AttachmentView) -> str | None:
        key = await self._keys.key_for(att.author_id, att.epoch)
        if key is None:
            return None
        ctx = _context(att.id, att.room_id, att.author_id, att.epoch, "name")
        return aead.open_sealed(key, base64.urlsafe_b64decode(att.name_enc), ctx).decode()

    async def read(self, room_id: str, att_id: str) -> tuple[AttachmentView, bytes]:
        await self._rooms.ensure(room_id)
        att = self._rooms.attachment(room_id, att_id)
        if att is None or att.removed:
            raise NotFoundError("no such attachment")
        blob = await self._bridge.obj_get(OBJECTS, attachment_object(room_id, att_id))
        key = await self._keys.key_for(att.author_id, att.epoch)
        if blob is None or key is None:
            raise NotFoundError("no such attachment")
        ctx = _context(att.id, room_id, att.author_id, att.epoch, "bytes")
        return att, aead.open_sealed(key, blob, ctx)


AVATAR_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
MAX_AVATAR_BYTES = 1024 * 1024


def avatar_object(user_id: str) -> str:
    return f"avatar.{user_id}"


def _avatar_context(user_id: str, epoch: int, version: str) -> bytes:
    return aad.encode("avatar", 1, [("user_id", user_id), ("epoch", epoch), ("version", version)])


class Avatars:
    """Profile pictures: sealed like attachments, visible to signed-in users."""

    def __init__(
        self, actors: ActorSystem, projector: Projector, keys: BodyKeys, bridge: NatsBridge
    ) -> None:
        self._actors = actors
        self._projector = projector
        self._keys = keys
        self._bridge = bridge

    async def set(self, user_id: str, file: Upload) -> None:
        from actors.users.actor import SetAvatar

        ctype = file.content_type.split(";")[0].strip().lower()
        if ctype not in AVATAR_TYPES:
            raise InvalidInputError("avatars must be PNG, JPEG, GIF or WebP images")
        if not file.data or len(file.data) > MAX_AVATAR_BYTES:
            raise InvalidInputError(f"avatars must be 1 to {MAX_AVATAR_BYTES} bytes")
        key = await self._keys.author_key(user_id)
        version = new_id()
        sealed = aead.seal(key.key, file.data, _avatar_context(user_id, key.epoch, version))
        await self._bridge.obj_put(OBJECTS, avatar_object(user_id), sealed)
        done = await self._actors.ask("user", user_id, SetAvatar(ctype, key.epoch, version))
        await self._projector.wait_for(done.last_seq)

    async def read(self, user_id: str, avatar: tuple[str, int, str]) -> bytes:
        _ctype, epoch, version = avatar
        blob = await self._bridge.obj_get(OBJECTS, avatar_object(user_id))
        key = await self._keys.key_for(user_id, epoch)
        if blob is None or key is None:
            raise NotFoundError("no avatar")
        return aead.open_sealed(key, blob, _avatar_context(user_id, epoch, version))
