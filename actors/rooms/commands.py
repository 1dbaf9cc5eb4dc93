"""Commands of the room entity (and room groups), as frozen value classes."""

from __future__ import annotations

import attrs


@attrs.frozen
class BodyKey:
    """The author's current message-body DEK (bytes stay in memory only)."""

    key: bytes = attrs.field(repr=False)
    epoch: int


@attrs.frozen
class CreateRoom:
    name: str
    topic: str
    kind: str
    created_by: str
    group_id: str = ""
    participants: tuple[str, ...] = ()
    read_only: bool = False


@attrs.frozen
class UpdateRoom:
    by: str
    name: str
    topic: str
    group_id: str


@attrs.frozen
class ArchiveRoom:
    by: str
    archived: bool


@attrs.frozen
class Join:
    user_id: str


@attrs.frozen
class Leave:
    user_id: str


@attrs.frozen
class Ban:
    by: str
    user_id: str
    reason: str
    until_ms: int = 0


@attrs.frozen
class Unban:
    by: str
    user_id: str


@attrs.frozen
class PostMessage:
    author_id: str
    body: str = attrs.field(repr=False)
    key: BodyKey
    in_reply_to: str = ""
    thread_root: str = ""
    echo: bool = False
    attachments: tuple[str, ...] = ()
    # The client's idempotency key (``clientMessageId``); "" for none.
    client_key: str = attrs.field(default="", repr=False)


@attrs.frozen
class PostedBefore:
    """The reply to a ``PostMessage`` whose client key was already used."""

    message_id: str
    seq: int


@attrs.frozen
class EditMessage:
    author_id: str
    target_id: str
    body: str = attrs.field(repr=False)
    key: BodyKey


@attrs.frozen
class RetractMessage:
    by: str
    target_id: str
    as_moderator: bool = False


@attrs.frozen
class React:
    user_id: str
    target_id: str
    shortcode: str
    add: bool


@attrs.frozen
class RegisterAttachment:
    author_id: str
    attachment_id: str
    name_enc: str
    content_type: str
    size: int
    epoch: int


@attrs.frozen
class Removal:
    """What a retraction or purge leaves for the caller to erase."""

    seqs: tuple[int, ...] = ()
    attachments: tuple[str, ...] = ()


@attrs.frozen
class PurgeMember:
    """Account deletion: retract every live message of the user, mark them deleted."""

    user_id: str


@attrs.frozen
class TakeUnerased:
    """Stored events of retracted messages still in the stream (to erase them)."""


@attrs.frozen
class CreateGroup:
    name: str
    created_by: str


@attrs.frozen
class PinMessage:
    """Pin (``pin=True``) or unpin a message; the caller checked ``message.pin``."""

    by: str
    target_id: str
    pin: bool = True
