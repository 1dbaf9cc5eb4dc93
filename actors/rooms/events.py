"""Durable events of rooms (``evt.room.<id>.*``) and room groups.

Message bodies are only ever stored sealed (``body`` is URL-safe base64 of
the XChaCha20-Poly1305 envelope under the author's message-body DEK epoch,
bound by AAD to event id, body event id, room id, author id and epoch).
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from actors.events import Event


@attrs.frozen
class RoomCreated(Event):
    TYPE: ClassVar[str] = "room.created"
    name: str
    topic: str
    kind: str  # "channel" | "dm"
    created_by: str
    group_id: str = ""
    participants: tuple[str, ...] = ()  # DMs only
    read_only: bool = False


@attrs.frozen
class RoomUpdated(Event):
    TYPE: ClassVar[str] = "room.updated"
    name: str
    topic: str
    group_id: str


@attrs.frozen
class RoomArchived(Event):
    TYPE: ClassVar[str] = "room.archived"
    archived: bool
    by: str


@attrs.frozen
class MemberJoined(Event):
    TYPE: ClassVar[str] = "room.member_joined"
    user_id: str


@attrs.frozen
class MemberLeft(Event):
    TYPE: ClassVar[str] = "room.member_left"
    user_id: str


@attrs.frozen
class MemberBanned(Event):
    TYPE: ClassVar[str] = "room.member_banned"
    user_id: str
    by: str
    reason: str
    until_ms: int  # 0 = no expiry


@attrs.frozen
class MemberUnbanned(Event):
    TYPE: ClassVar[str] = "room.member_unbanned"
    user_id: str
    by: str


@attrs.frozen
class MessagePosted(Event):
    TYPE: ClassVar[str] = "room.message_posted"
    author_id: str
    body: str
    epoch: int
    in_reply_to: str = ""
    thread_root: str = ""
    echo: bool = False
    attachments: tuple[str, ...] = ()
    # SHA-256 of (author, the client's idempotency key), never the key itself.
    client_key: str = ""


@attrs.frozen
class AttachmentUploaded(Event):
    """Bytes sealed in the object store; the file name is sealed here too."""

    TYPE: ClassVar[str] = "room.attachment_uploaded"
    attachment_id: str
    author_id: str
    name_enc: str
    content_type: str
    size: int
    epoch: int


@attrs.frozen
class MessageEdited(Event):
    TYPE: ClassVar[str] = "room.message_edited"
    target_id: str
    author_id: str
    body: str
    epoch: int


@attrs.frozen
class MessageRetracted(Event):
    TYPE: ClassVar[str] = "room.message_retracted"
    target_id: str
    by: str
    author_id: str


@attrs.frozen
class ReactionChanged(Event):
    TYPE: ClassVar[str] = "room.reaction_changed"
    target_id: str
    user_id: str
    shortcode: str
    added: bool


@attrs.frozen
class GroupCreated(Event):
    TYPE: ClassVar[str] = "group.created"
    name: str
    created_by: str


@attrs.frozen
class MemberDeleted(Event):
    """A member's account was deleted: clients show "Deleted User"."""

    TYPE: ClassVar[str] = "room.member_deleted"
    user_id: str


@attrs.frozen
class MessagePinned(Event):
    """A message was pinned to its room (no content: only which and by whom)."""

    TYPE: ClassVar[str] = "room.message_pinned"
    target_id: str
    by: str


@attrs.frozen
class MessageUnpinned(Event):
    TYPE: ClassVar[str] = "room.message_unpinned"
    target_id: str
    by: str
