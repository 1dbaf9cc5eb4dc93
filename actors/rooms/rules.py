"""A room's rules and values, apart from the actor: body and key checks,
sealing, client keys, the in-memory message record and its checkpoint row form.
"""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

import attrs

from actors.rooms.commands import BodyKey, PostedBefore
from chatto.crypto import aad, aead
from chatto.errors import ConflictError, InvalidInputError

MAX_BODY_BYTES = 10_000
EDIT_WINDOW_MS = 3 * 3600 * 1000
MAX_DM_PARTICIPANTS = 10
# How long a client's idempotency key (clientMessageId) is remembered.
CLIENT_KEY_WINDOW_MS = 24 * 3600 * 1000
MAX_CLIENT_KEY_CHARS = 64


@attrs.define
class Msg:
    author_id: str
    at_ms: int
    seqs: list[int]
    retracted: bool = False
    thread_root: str = ""
    reactions: dict[str, set[str]] = attrs.Factory(dict)
    attachments: tuple[str, ...] = ()


def msg_row(m: Msg) -> list[Any]:
    reactions = {code: sorted(users) for code, users in m.reactions.items()}
    return [
        m.author_id,
        m.at_ms,
        list(m.seqs),
        m.retracted,
        m.thread_root,
        reactions,
        list(m.attachments),
    ]


def msg_from_row(row: list[Any]) -> Msg:
    """The inverse of ``msg_row`` (values come from a checksummed checkpoint)."""
    author, at_ms, seqs, retracted, thread_root, reactions, attachments = row
    return Msg(
        author,
        at_ms,
        seqs,
        retracted,
        thread_root,
        {code: set(users) for code, users in reactions.items()} if reactions else {},
        tuple(attachments) if attachments else (),
    )


def seal_body(
    key: BodyKey, event_id: str, body_event_id: str, room: str, author: str, body: str
) -> str:
    context = aad.body_aad(event_id, body_event_id, room, author, key.epoch)
    return base64.urlsafe_b64encode(aead.seal(key.key, body.encode("utf-8"), context)).decode()


def check_body(body: str) -> str:
    if not body.strip():
        raise InvalidInputError("message body must not be empty")
    if len(body.encode("utf-8")) > MAX_BODY_BYTES:
        raise InvalidInputError(f"message body must be at most {MAX_BODY_BYTES} bytes")
    return body


def check_client_key(key: str) -> str:
    if not 1 <= len(key) <= MAX_CLIENT_KEY_CHARS:
        raise InvalidInputError(f"clientMessageId must be 1 to {MAX_CLIENT_KEY_CHARS} characters")
    return key


def client_key_digest(author_id: str, key: str) -> str:
    """What a message event stores of the client's key: a digest bound to the author."""
    return hashlib.sha256(f"{author_id}\0{check_client_key(key)}".encode()).hexdigest()


def remember_client_key(
    keys: dict[str, tuple[str, int]], digest: str, message_id: str, at_ms: int
) -> None:
    """Note a post's client key digest; those older than the window go (oldest first)."""
    keys[digest] = (message_id, at_ms)
    horizon = at_ms - CLIENT_KEY_WINDOW_MS
    while keys:
        oldest = next(iter(keys))
        if keys[oldest][1] >= horizon:
            break
        del keys[oldest]


def posted_before(
    keys: dict[str, tuple[str, int]], messages: dict[str, Msg], digest: str
) -> PostedBefore | None:
    """The message already posted with this key (``messages`` must hold it)."""
    seen = keys.get(digest)
    if seen is None or time.time() * 1000 - seen[1] > CLIENT_KEY_WINDOW_MS:
        return None
    msg = messages.get(seen[0])
    if msg is None or msg.retracted or not msg.seqs:
        raise ConflictError("the message posted with this clientMessageId was retracted")
    return PostedBefore(seen[0], msg.seqs[0])
