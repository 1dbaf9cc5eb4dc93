"""Permission checks at the API boundary, on top of ``actors.rbac``.

Resolvers never call domain code before the check: fields marked
``@requires(permission: ...)`` in the schema are wrapped to check it (in the
room named by a ``roomId`` argument, if any); resolvers add finer checks
(thread replies, moderating others' messages) with ``require``.
"""

from __future__ import annotations

from actors.rbac import RbacView, Verdict
from actors.room_directory import RoomDirectory
from actors.user_directory import UserRecord
from chatto.errors import ForbiddenError


class Permissions:
    """Decides for a viewer, with the room's group, kind and creator filled in."""

    def __init__(self, rbac: RbacView, rooms: RoomDirectory) -> None:
        self.rbac = rbac
        self._rooms = rooms

    def decide(self, user: UserRecord, permission: str, room_id: str = "") -> Verdict:
        room = self._rooms.rooms.get(room_id) if room_id else None
        return self.rbac.decide(
            user.id,
            user.is_owner,
            permission,
            room=room.id if room else "",
            group=room.group_id if room else "",
            is_dm=room is not None and room.kind == "dm",
            creator=room.created_by if room else "",
        )

    def allowed(self, user: UserRecord, permission: str, room_id: str = "") -> bool:
        return self.decide(user, permission, room_id).allowed

    def require(self, user: UserRecord, permission: str, room_id: str = "") -> None:
        if not self.allowed(user, permission, room_id):
            raise ForbiddenError(f"you lack the permission {permission}")
