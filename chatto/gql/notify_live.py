"""Notification events on ``myEvents`` (used by ``chatto/gql/live_events.py``).

Arrivals need no signal of their own: every recipient of a notification is
a member of the message's room, so their stream already receives the
room's ``message_posted``/``message_edited`` event; when it does, the
process's notification read model (fed by the same projector just before)
says whether that event notified the viewer. Dismissals, follows and
levels are events of the viewer's ``notify`` entity, which the projector
of every process routes to hub topic ``notify.<user>``: every client of
the user, on any process, hears them. Never shared between subscribers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from actors.events import Recorded
from actors.notifications.events import (
    AllNotificationsDismissed,
    LevelSet,
    NotificationsDismissed,
    ThreadFollowed,
    ThreadUnfollowed,
)
from actors.rooms.events import MessageEdited, MessagePosted

if TYPE_CHECKING:
    from chatto.gql.context import Info


def notify_topic(user_id: str) -> str:
    return f"notify.{user_id}"


def arrived(info: Info, me: str, rec: Recorded) -> dict[str, Any] | None:
    """NOTIFICATION if this room event notified the viewer (and still does)."""
    ev = rec.envelope.event
    if isinstance(ev, MessagePosted):
        message_id = rec.envelope.id
    elif isinstance(ev, MessageEdited):
        message_id = ev.target_id
    else:
        return None
    service = info.context.services.messaging.notifications
    notice = service.feed.get(me, message_id)
    if notice is None or notice.seq != rec.seq or not service.visible(me, notice):
        return None
    return {
        "type": "NOTIFICATION",
        "roomId": notice.room_id,
        "eventId": message_id,
        "seq": notice.seq,
        "userId": notice.actor_id,
        "notification": notice,
    }


def setting_event(me: str, rec: Recorded) -> dict[str, Any] | None:
    """The viewer's own dismissals, follows and levels, for their other clients."""
    if rec.envelope.entity.kind != "notify" or rec.envelope.entity.id != me:
        return None
    ev = rec.envelope.event
    out: dict[str, Any] = {"userId": me, "seq": rec.seq}
    if isinstance(ev, NotificationsDismissed):
        out |= {"type": "NOTIFICATION_DISMISSED", "notificationIds": list(ev.message_ids)}
    elif isinstance(ev, AllNotificationsDismissed):
        out |= {"type": "NOTIFICATION_DISMISSED", "notificationIds": None, "seq": ev.up_to}
    elif isinstance(ev, ThreadFollowed | ThreadUnfollowed):
        kind = "THREAD_FOLLOWED" if isinstance(ev, ThreadFollowed) else "THREAD_UNFOLLOWED"
        out |= {"type": kind, "roomId": ev.room_id, "eventId": ev.root_id}
    elif isinstance(ev, LevelSet):
        out |= {"type": "NOTIFICATION_SETTINGS", "roomId": ev.room_id or None}
    else:
        return None
    return out
