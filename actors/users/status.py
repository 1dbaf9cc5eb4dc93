"""A user's custom status (text and emoji, sealed like a display name) and
the removal of their avatar: commands and events of the user entity."""

from __future__ import annotations

import unicodedata
from typing import ClassVar

import attrs

from actors.events import Event
from actors.users.events import AvatarSet, ProfileUpdated
from chatto.errors import InvalidInputError

MAX_STATUS_TEXT = 128
MAX_STATUS_EMOJI = 64


@attrs.frozen
class StatusSet(Event):
    """Both fields sealed with the user's PII DEK (shredded with the account)."""

    TYPE: ClassVar[str] = "user.status_set"
    text_enc: str
    emoji_enc: str
    pii_epoch: int


@attrs.frozen
class StatusCleared(Event):
    TYPE: ClassVar[str] = "user.status_cleared"


@attrs.frozen
class AvatarRemoved(Event):
    TYPE: ClassVar[str] = "user.avatar_removed"


# What other people see of a user changed: PROFILE_UPDATED to the user and
# to everyone sharing a room with them (they refetch the user).
PROFILE_EVENTS: tuple[type[Event], ...] = (
    ProfileUpdated,
    StatusSet,
    StatusCleared,
    AvatarSet,
    AvatarRemoved,
)


@attrs.frozen
class SetStatus:
    text: str
    emoji: str


@attrs.frozen
class ClearStatus:
    pass


@attrs.frozen
class RemoveAvatar:
    pass


def check_status(text: str, emoji: str) -> SetStatus:
    """Trimmed, NFC-normalised fields; at least one must be set, neither may hold
    control characters (a status is shown in other people's sidebars)."""
    text = unicodedata.normalize("NFC", text.strip())
    emoji = unicodedata.normalize("NFC", emoji.strip())
    if not text and not emoji:
        raise InvalidInputError("a status needs a text or an emoji (or use clearStatus)")
    if len(text) > MAX_STATUS_TEXT or len(emoji) > MAX_STATUS_EMOJI:
        raise InvalidInputError(
            f"status text is at most {MAX_STATUS_TEXT} characters, emoji {MAX_STATUS_EMOJI}"
        )
    if any(unicodedata.category(ch) in ("Cc", "Cs") for ch in text + emoji):
        raise InvalidInputError("status must not contain control characters")
    if " " in emoji:
        raise InvalidInputError("status emoji must not contain spaces")
    return SetStatus(text, emoji)
