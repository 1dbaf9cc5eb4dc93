"""Permission checks at the API boundary, on top of ``actors.rbac``.

Resolvers never call domain code before the check: fields marked
``@requires(permission: ...)`` in the schema are wrapped to check it (in the
room named by a ``roomId`` argument, if any); resolvers add finer checks
(thread replies, moderating others' messages) with ``require``. Acting on
another user, a role's members or a role's rules also needs a strictly
higher rank than the target (``require_outranks``, ``require_subject_below``).
"""

from __future__ import annotations

from actors.rbac import RANKS, RbacView, Verdict
from actors.rooms.directory import RoomDirectory
from actors.users.directory import UserRecord
from chatto.errors import ForbiddenError

# Never a room: channel ids are ULIDs, DM ids "dm-" + 26 base32 characters.
HIDDEN_ROOM = "dm-none"


class Permissions:
    """Decides for a viewer, with the room's group, kind and creator filled in."""

    def __init__(self, rbac: RbacView, rooms: RoomDirectory) -> None:
        self.rbac = rbac
        self._rooms = rooms

    def visible_room_id(self, user: UserRecord, room_id: str) -> str:
        """``room_id``, or ``HIDDEN_ROOM`` for a DM ``user`` is not part of.

        Every room-id argument passes through here before anything else, so
        to an outsider (owners and admins included) an existing DM takes the
        very path of a room that does not exist: same answers, same work.
        """
        room = self._rooms.rooms.get(room_id)
        if room is not None and room.kind == "dm" and user.id not in room.members:
            return HIDDEN_ROOM
        return room_id

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

    def rank(self, user: UserRecord) -> int:
        return self.rbac.rank(user.id, user.is_owner)

    def require_outranks(self, actor: UserRecord, target: UserRecord) -> None:
        """``actor`` may act on ``target`` only from a strictly higher rank."""
        if self.rank(actor) <= self.rank(target):
            raise ForbiddenError("you can only act on users of a lower rank than yours")

    def require_role_below(self, actor: UserRecord, role_id: str) -> None:
        """Only a higher rank may hand out, take back or change the rules of a role."""
        if self.rank(actor) <= RANKS.get(role_id, 0):
            raise ForbiddenError("you can only manage roles of a lower rank than yours")

    def require_subject_below(
        self, actor: UserRecord, subject: str, target: UserRecord | None
    ) -> None:
        """For a rule aimed at ``role:<id>`` or ``user:<id>`` (``target``, if it exists)."""
        kind, _, ident = subject.partition(":")
        if kind == "role":
            self.require_role_below(actor, ident)
        elif target is not None:
            self.require_outranks(actor, target)
