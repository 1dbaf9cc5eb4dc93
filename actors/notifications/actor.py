"""``NotifyActor``: serialises one user's notification settings and dismissals.

Validation that needs the read model (is this one of my notifications? is
that a thread of a room I am in?) is done by the caller before asking; the
actor only orders the user's writes (optimistic concurrency per user).
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.notifications.events import (
    LEVELS,
    AllNotificationsDismissed,
    LevelSet,
    NotificationsDismissed,
    ThreadFollowed,
    ThreadUnfollowed,
)
from actors.store import EventStore
from chatto.errors import InvalidInputError


@attrs.frozen
class FollowThread:
    room_id: str
    root_id: str
    follow: bool


@attrs.frozen
class SetLevel:
    room_id: str  # "" = server-wide
    level: str  # "" = inherit (rooms only)
    muted: bool = False


@attrs.frozen
class Dismiss:
    message_ids: tuple[str, ...]


@attrs.frozen
class DismissAll:
    up_to: int


@attrs.frozen
class StoredSeqs:
    """Account deletion: the stream sequences of every event of this user's entity."""


class NotifyActor(EntityActor):
    """The ``notify.<user>`` entity; state lives in the read model."""

    def __init__(self, user_id: str, store: EventStore, max_retries: int = 5) -> None:
        super().__init__(EntityRef("notify", user_id), store, max_retries)
        # Every decision is valid on its own; only where the events are is
        # kept, so an account deletion can erase them.
        self.seqs: list[int] = []

    def apply(self, recorded: Recorded) -> None:
        self.seqs.append(recorded.seq)

    def decide(self, command: Any) -> Decision:
        event: Event
        if isinstance(command, StoredSeqs):
            return Decision(reply=tuple(self.seqs))
        if isinstance(command, FollowThread):
            cls = ThreadFollowed if command.follow else ThreadUnfollowed
            event = cls(command.room_id, command.root_id)
        elif isinstance(command, SetLevel):
            if command.level not in LEVELS and (command.level or not command.room_id):
                raise InvalidInputError("level must be ALL, MENTIONS or NOTHING")
            event = LevelSet(command.room_id, command.level, command.muted)
        elif isinstance(command, Dismiss):
            event = NotificationsDismissed(command.message_ids)
        elif isinstance(command, DismissAll):
            event = AllNotificationsDismissed(command.up_to)
        else:
            raise InvalidInputError(f"notify actor cannot handle {type(command).__name__}")
        return Decision([event])
