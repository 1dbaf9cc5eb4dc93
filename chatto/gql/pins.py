"""Resolvers for pinned messages: ``pinMessage``, ``unpinMessage``, ``Room.pinnedMessages``.

``message.pin`` is checked by ``@requires`` in the room (a DM the viewer is
not in is a missing room by then); membership, archived rooms, the cap and
retracted messages are the room actor's rules (``actors/rooms/pins.py``).
Pins are content: members only, admins and owners included.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType

from actors.rooms.directory import MessageView, RoomView
from chatto.gql.rooms import viewer_of
from chatto.messaging.service import require_member

if TYPE_CHECKING:
    from chatto.gql.context import Info

pins_mutation = MutationType()
pins_room = ObjectType("Room")


@pins_room.field("pinnedMessages")
async def resolve_pinned(room: RoomView, info: Info) -> list[MessageView]:
    messaging = info.context.services.messaging
    require_member(messaging.rooms, room.id, viewer_of(info).id)
    # An old pinned message is read back from the stream (issue #22).
    pinned = [await messaging.cold.message(room.id, i) for i in reversed(room.pins)]
    return [m for m in pinned if m is not None and not m.retracted]


@pins_mutation.field("pinMessage")
async def resolve_pin(_obj: Any, info: Info, roomId: str, eventId: str) -> bool:
    await info.context.services.messaging.pin(viewer_of(info).id, roomId, eventId, True)
    return True


@pins_mutation.field("unpinMessage")
async def resolve_unpin(_obj: Any, info: Info, roomId: str, eventId: str) -> bool:
    await info.context.services.messaging.pin(viewer_of(info).id, roomId, eventId, False)
    return True
