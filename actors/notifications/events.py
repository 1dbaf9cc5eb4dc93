"""Durable events of a user's notification settings (``evt.notify.<user>.*``).

They hold ids and levels only: no body, no PII. Notifications themselves
are not events: the read model derives them from room events
(``actors/notifications/feed.py``), so a retraction or an account deletion
removes them with the message.
"""

from __future__ import annotations

from typing import ClassVar

import attrs

from actors.events import Event

LEVELS = ("ALL", "MENTIONS", "NOTHING")


@attrs.frozen
class ThreadFollowed(Event):
    TYPE: ClassVar[str] = "notify.thread_followed"
    room_id: str
    root_id: str


@attrs.frozen
class ThreadUnfollowed(Event):
    TYPE: ClassVar[str] = "notify.thread_unfollowed"
    room_id: str
    root_id: str


@attrs.frozen
class LevelSet(Event):
    """``room_id`` "" is the server-wide level; ``level`` "" inherits it."""

    TYPE: ClassVar[str] = "notify.level_set"
    room_id: str
    level: str
    muted: bool = False


@attrs.frozen
class NotificationsDismissed(Event):
    TYPE: ClassVar[str] = "notify.dismissed"
    message_ids: tuple[str, ...]


@attrs.frozen
class AllNotificationsDismissed(Event):
    """Every notification that arrived up to stream sequence ``up_to``."""

    TYPE: ClassVar[str] = "notify.all_dismissed"
    up_to: int
