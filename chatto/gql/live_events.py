"""``Subscription.myEvents``: one live stream per client, routed by topic.

The subscriber listens to ``user.<me>`` (presence arrives there too) and ``room.<id>`` for
each room the viewer is in; a membership event about the viewer (delivered
on ``user.<me>``) adds or removes a room topic at once, without
reconnecting. When the socket's credential ends (revoked, logged out,
expired, password changed, account deleted: ``chatto.auth.ends``) the
stream says SESSION_TERMINATED and the socket is closed; it never yields
another event after that is known here. Presence is refreshed every 30 s
while subscribed.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import trio
from ariadne import SubscriptionType

from actors.events import Recorded
from actors.hub import TICK, Subscriber
from actors.rooms.events import (
    MemberBanned,
    MemberDeleted,
    MemberJoined,
    MemberLeft,
    MemberUnbanned,
    MessageEdited,
    MessagePinned,
    MessagePosted,
    MessageRetracted,
    MessageUnpinned,
    ReactionChanged,
    RoomArchived,
    RoomCreated,
    RoomUpdated,
)
from actors.rooms.reactions import stored_reaction
from actors.server import SETTINGS_TOPIC, live_kind
from actors.users.events import PasswordSet, UserDeletionStarted
from actors.users.status import PROFILE_EVENTS
from chatto.errors import BusyError, ChattoError
from chatto.gql.context import FAREWELL, SHARE
from chatto.gql.live_fast import FAST_LANE, FastFilter, Seen
from chatto.gql.notify_live import arrived, notify_topic, setting_event
from chatto.gql.rooms import viewer_of
from chatto.messaging.live import (
    PRESENCE_REFRESH,
    PresenceSignal,
    ReadMarkerSignal,
    TypingSignal,
)

if TYPE_CHECKING:
    from chatto.auth.ends import Credential
    from chatto.gql.context import Info

live_subscription = SubscriptionType()

ROOM_TYPES: dict[type, str] = {
    RoomCreated: "ROOM_CREATED",
    RoomUpdated: "ROOM_UPDATED",
    RoomArchived: "ROOM_ARCHIVED",
    MemberJoined: "MEMBER_JOINED",
    MemberLeft: "MEMBER_LEFT",
    MemberBanned: "MEMBER_BANNED",
    MemberUnbanned: "MEMBER_UNBANNED",
    MemberDeleted: "MEMBER_DELETED",
    MessagePosted: "MESSAGE_POSTED",
    MessageEdited: "MESSAGE_EDITED",
    MessageRetracted: "MESSAGE_RETRACTED",
    ReactionChanged: "REACTION_CHANGED",
    MessagePinned: "MESSAGE_PINNED",
    MessageUnpinned: "MESSAGE_UNPINNED",
}


class SessionEnded(ChattoError):
    """The viewer's credentials were revoked while subscribed."""

    code = "SESSION_TERMINATED"
    http_status = 401


def _follow_membership(sub: Subscriber, me: str, rec: Recorded) -> None:
    ev = rec.envelope.event
    topic = f"room.{rec.envelope.entity.id}"
    if isinstance(ev, MemberJoined) and ev.user_id == me:
        sub.add_topic(topic)
    elif isinstance(ev, MemberLeft | MemberBanned | MemberDeleted) and ev.user_id == me:
        sub.remove_topic(topic)


def _still_visible(info: Info, me: str, rec: Recorded) -> bool:
    """Whether a room event may still reach this viewer when it is consumed.

    Topics change when the subscriber consumes a membership event, so events
    queued between a ban (or leave) and that moment would otherwise still be
    delivered. The read model is projected before the hub publishes, so it
    already knows; events about the viewer themself are always delivered.
    """
    if rec.envelope.entity.kind != "room":
        return True
    if getattr(rec.envelope.event, "user_id", None) == me:
        return True
    room = info.context.services.messaging.rooms.rooms.get(rec.envelope.entity.id)
    return room is not None and me in room.members


def _typing_visible(info: Info, me: str, sig: TypingSignal) -> bool:
    """Typing in a room the viewer has just left or been banned from stays there.

    The signal may have been queued before the subscriber consumed the ban
    that removes the room's topic (the same race as ``_still_visible``).
    """
    room = info.context.services.messaging.rooms.rooms.get(sig.room_id)
    return sig.user_id != me and room is not None and me in room.members


async def _read_marker(info: Info, me: str, sig: ReadMarkerSignal) -> dict[str, Any] | None:
    """READ_MARKER for the viewer's own marker, with the room's new counts.

    Counts are computed here, from this process's read model, so every
    client sees the room as it stands when the event reaches it.
    """
    room = info.context.services.messaging.rooms.rooms.get(sig.room_id)
    if sig.user_id != me or room is None or me not in room.members:
        return None
    out: dict[str, Any] = {
        "type": "READ_MARKER",
        "roomId": sig.room_id,
        "eventId": sig.event_id,
        "seq": sig.seq,
        "userId": me,
        "threadRootId": sig.thread_root or None,
    }
    if not sig.thread_root:
        await info.context.services.messaging.rooms.ensure(room.id)
        unread = info.context.services.messaging.markers.count(room, me, sig.seq)
        out["unreadCount"], out["mentionCount"] = unread.count, unread.mentions
    return out


def _closing(cred: Credential | None, sub: Subscriber) -> contextlib.AbstractContextManager[None]:
    # The credential's end closes the stream's channel, so a waiting receive
    # returns at once (no scope per event on the hot path).
    return nullcontext() if cred is None else cred.closing(sub.send.close)


def _room_event(rec: Recorded, info: Info) -> dict[str, Any] | None:
    ev = rec.envelope.event
    kind = ROOM_TYPES.get(type(ev))
    if kind is None:
        return None
    room_id = rec.envelope.entity.id
    out: dict[str, Any] = {
        "type": kind,
        "roomId": room_id,
        "eventId": rec.envelope.id,
        "seq": rec.seq,
    }
    messages = info.context.services.messaging.rooms.messages
    if isinstance(ev, MessagePosted):
        out["userId"], out["message"] = ev.author_id, messages.get(rec.envelope.id)
    elif isinstance(ev, MessageEdited | MessageRetracted | ReactionChanged):
        out["message"] = messages.get(ev.target_id)
        out["userId"] = getattr(ev, "user_id", None) or getattr(ev, "author_id", None)
        if isinstance(ev, ReactionChanged):
            out["reaction"], out["added"] = stored_reaction(ev.shortcode), ev.added
    elif isinstance(ev, MessagePinned | MessageUnpinned):
        out["message"], out["userId"] = messages.get(ev.target_id), ev.by
    elif isinstance(ev, MemberJoined | MemberLeft | MemberBanned | MemberUnbanned | MemberDeleted):
        out["userId"] = ev.user_id
    return out


async def _cold_target(out: dict[str, Any], rec: Recorded, info: Info) -> None:
    """A change to a message below the hot window (issue #22): its view is
    read back from the stream (then cached for every other subscriber)."""
    target = getattr(rec.envelope.event, "target_id", "")
    if target and "message" in out and out["message"] is None:
        cold = info.context.services.messaging.cold
        view = await cold.message(out["roomId"], target)
        out["message"] = view or await cold.tombstone(out["roomId"], target)


_ENDED = object()
# Queued items are taken without a task switch; one in this many still
# yields to the scheduler so a long backlog does not hold the loop.
DRAIN_CHECKPOINT = 32


async def _next_item(sub: Subscriber) -> Any:
    """The next hub item (``TICK`` now and then when idle); ``_ENDED`` once closed.

    A backlog (several events queued since the last wake-up) is drained with
    ``receive_nowait``: no scheduler round trip per item. An idle wait has no
    deadline (no cancel scope per item): the hub's ticks wake it instead.
    """
    try:
        item = sub.receive.receive_nowait()
    except trio.WouldBlock:
        sub.drained = 0
    except trio.EndOfChannel:
        return _ENDED
    else:
        sub.drained += 1
        if sub.drained % DRAIN_CHECKPOINT == 0:
            await trio.lowlevel.checkpoint()
        return item
    # Parked: everything received so far is handled, so the hub may hand
    # items to the fast lane until one is queued (actors/hub.py).
    sub.parked = True
    try:
        return await sub.receive.receive()
    except trio.EndOfChannel:
        return _ENDED
    finally:
        sub.parked = False


@live_subscription.source("myEvents")
async def source_my_events(_obj: Any, info: Info) -> AsyncGenerator[dict[str, Any], None]:
    viewer = viewer_of(info)
    services = info.context.services
    me, generation, cred = viewer.id, viewer.generation, info.context.credential
    rooms = services.messaging.rooms.rooms_of(me)
    # Presence arrives on user.<me> from people sharing a room (messaging/live.py).
    topics = [f"user.{me}", notify_topic(me), SETTINGS_TOPIC, *(f"room.{r}" for r in rooms)]
    live = services.messaging.live
    seen = Seen()
    with services.hub.subscribe(topics, capacity=1024) as sub, _closing(cred, sub):
        sub.wants_ticks = True
        lane = FAST_LANE.get()
        if lane is not None and lane.stream is not None:
            fast = FastFilter(info, me, cred, seen, lane, lane.stream, _room_event, _still_visible)
            sub.fast = fast.deliver
        # Subscribed first; the client's first event is its own presence.
        status = await live.come_online(me)
        yield {"type": "PRESENCE", "userId": me, "presence": status}
        next_refresh = trio.current_time() + PRESENCE_REFRESH
        while True:
            if cred is not None and cred.ended:
                yield {"type": "SESSION_TERMINATED", "userId": me, FAREWELL: True}
                raise SessionEnded("session terminated")
            item = await _next_item(sub)
            if item is _ENDED:
                if cred is not None and cred.ended:
                    continue  # closed by the credential's end: say so above
                raise BusyError("slow consumer: live stream dropped")
            if trio.current_time() >= next_refresh:
                await live.refresh_presence(me)
                next_refresh = trio.current_time() + PRESENCE_REFRESH
            if item is TICK:
                continue
            if isinstance(item, TypingSignal):
                if _typing_visible(info, me, item):
                    yield {
                        "type": "TYPING",
                        "roomId": item.room_id,
                        "userId": item.user_id,
                        "typing": item.typing,
                        SHARE: item,
                    }
            elif isinstance(item, ReadMarkerSignal):
                marked = await _read_marker(info, me, item)
                if marked is not None:
                    yield marked
            elif isinstance(item, PresenceSignal):
                presence = {"type": "PRESENCE", "userId": item.user_id, "presence": item.status}
                yield presence | {SHARE: item}
            elif isinstance(item, Recorded):
                if not seen.first(item.seq):
                    continue  # a membership event can arrive on two topics
                ev = item.envelope.event
                # Without a credential to watch (not a WebSocket), the stream
                # still notices its own user's password change or deletion.
                if cred is None and (
                    isinstance(ev, UserDeletionStarted)
                    or (isinstance(ev, PasswordSet) and ev.auth_generation != generation)
                ):
                    yield {"type": "SESSION_TERMINATED", "userId": me, FAREWELL: True}
                    raise SessionEnded("session terminated")
                if isinstance(ev, PROFILE_EVENTS):
                    who = item.envelope.entity.id  # the viewer, or someone sharing a room
                    yield {"type": "PROFILE_UPDATED", "userId": who, SHARE: item}
                    continue
                settings_kind = live_kind(item)
                if settings_kind is not None:
                    yield {"type": settings_kind, "seq": item.seq, SHARE: item}
                    continue
                if (setting := setting_event(me, item)) is not None:
                    yield setting
                    continue
                _follow_membership(sub, me, item)
                if not _still_visible(info, me, item):
                    continue
                out = _room_event(item, info)
                if out is not None:
                    await _cold_target(out, item, info)
                    out[SHARE] = item  # the same for every member: shareable (gql/fanout.py)
                    yield out
                if (notified := arrived(info, me, item)) is not None:
                    yield notified


@live_subscription.field("myEvents")
def resolve_my_event(event: dict[str, Any], _info: Info) -> dict[str, Any]:
    return event
