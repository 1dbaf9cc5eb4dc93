"""Roles and permissions: events, the ``RbacActor`` and the decision function.

Decision for user U, permission P, optionally in room R (of group G):
1. DM boundary: inside a DM, moderation and room administration are denied
   to everyone, owners included;
2. owners are allowed everything else;
3. any applicable deny (for U or one of U's roles, at server, G or R scope)
   wins;
4. any applicable allow (explicit, a built-in role default, or the implicit
   room-creator rights, a DM participant's right to pin) allows;
5. otherwise deny.
All RBAC state is one entity (``evt.rbac.*``): changes are rare and must be
totally ordered.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

import attrs

from actors.entity import Decision, EntityActor
from actors.events import EntityRef, Event, Recorded
from actors.store import EventStore
from chatto.errors import ConflictError, ForbiddenError, InvalidInputError, NotFoundError

RBAC = EntityRef("rbac")
EVERYONE, MODERATOR, ADMIN, OWNER = "everyone", "moderator", "admin", "owner"
BUILT_IN = (EVERYONE, MODERATOR, ADMIN, OWNER)

PERMISSIONS = (
    "server.manage",
    "room.create",
    "room.join",
    "room.list",
    "room.manage",
    "room.ban-member",
    "message.post",
    "message.post-in-thread",
    "message.attach",
    "message.manage",
    "message.react",
    "message.echo",
    "message.mention-room",
    "role.manage",
    "role.assign",
    "admin.view-users",
    "admin.view-system",
    "admin.view-audit",
    "user.delete-any",
    "user.delete-self",
    "user.manage-permissions",
    "invite.manage",
    "message.pin",
)
# Never allowed inside a DM, whoever asks: the DM privacy boundary.
DM_DENIED = frozenset(
    {"room.manage", "room.ban-member", "message.manage", "admin.view-users", "admin.view-audit"}
)
# Rights the creator of a channel has in it unless explicitly denied.
CREATOR = frozenset(
    {"room.manage", "room.ban-member", "message.manage", "message.pin", "message.mention-room"}
)
# Rights every participant has in a DM unless explicitly denied (who is a
# participant is checked by the room itself).
DM_PARTICIPANT = frozenset({"message.pin"})
EVERYONE_DEFAULTS = frozenset(
    {
        "room.list",
        "room.join",
        # Deliberate: anyone may open a room (deny it to `everyone` to restrict).
        "room.create",
        "message.post",
        "message.post-in-thread",
        "message.react",
        "message.echo",
        "message.attach",
        "user.delete-self",
    }
)
MODERATOR_DEFAULTS = frozenset(
    {
        "admin.view-users",
        "message.manage",
        "room.ban-member",
        "message.pin",
        "message.mention-room",
    }
)
ADMIN_DEFAULTS = frozenset(
    {
        "server.manage",
        "room.create",
        "room.manage",
        "room.ban-member",
        "message.manage",
        "role.manage",
        "role.assign",
        "admin.view-users",
        "admin.view-system",
        "admin.view-audit",
        "user.delete-any",
        "user.manage-permissions",
        "invite.manage",
    }
)
DEFAULTS = {
    EVERYONE: EVERYONE_DEFAULTS,
    MODERATOR: EVERYONE_DEFAULTS | MODERATOR_DEFAULTS,
    ADMIN: EVERYONE_DEFAULTS | MODERATOR_DEFAULTS | ADMIN_DEFAULTS,
}
# Rank of the built-in roles; custom roles rank with `everyone`. Whoever acts
# on a user, or on a role's membership or rules, must rank strictly higher
# than the target, so no one can remove, demote or restrict a peer or a
# superior (an admin cannot delete the owner, nor deny admins anything).
RANKS = {EVERYONE: 0, MODERATOR: 1, ADMIN: 2, OWNER: 3}


# --- events ---------------------------------------------------------------------
@attrs.frozen
class RoleCreated(Event):
    TYPE: ClassVar[str] = "rbac.role_created"
    role_id: str
    name: str


@attrs.frozen
class RoleRenamed(Event):
    TYPE: ClassVar[str] = "rbac.role_renamed"
    role_id: str
    name: str


@attrs.frozen
class RoleDeleted(Event):
    TYPE: ClassVar[str] = "rbac.role_deleted"
    role_id: str


@attrs.frozen
class RoleAssigned(Event):
    TYPE: ClassVar[str] = "rbac.role_assigned"
    role_id: str
    user_id: str
    assigned: bool


@attrs.frozen
class RuleSet(Event):
    """An allow, deny or clear for a role or user at a scope."""

    TYPE: ClassVar[str] = "rbac.rule_set"
    subject: str  # "role:<id>" | "user:<id>"
    scope: str  # "server" | "group:<id>" | "room:<id>"
    permission: str
    effect: str  # "allow" | "deny" | "clear"


# --- commands -------------------------------------------------------------------
@attrs.frozen
class CreateRole:
    role_id: str
    name: str


@attrs.frozen
class RenameRole:
    role_id: str
    name: str


@attrs.frozen
class DeleteRole:
    role_id: str


@attrs.frozen
class AssignRole:
    role_id: str
    user_id: str
    assigned: bool


@attrs.frozen
class SetRule:
    subject: str
    scope: str
    permission: str
    effect: str


@attrs.frozen
class Verdict:
    allowed: bool
    reason: str


class RbacState:
    """Roles, assignments and rules; shared by the actor and the read model."""

    def __init__(self) -> None:
        self.roles: dict[str, str] = {r: r for r in BUILT_IN}
        self.members: dict[str, set[str]] = {}  # user -> custom/built-in role ids
        self.rules: dict[tuple[str, str, str], str] = {}  # (subject, scope, perm) -> effect

    def apply(self, recorded: Recorded) -> None:
        ev = recorded.envelope.event
        if isinstance(ev, RoleCreated | RoleRenamed):
            self.roles[ev.role_id] = ev.name
        elif isinstance(ev, RoleDeleted):
            self.roles.pop(ev.role_id, None)
            for roles in self.members.values():
                roles.discard(ev.role_id)
            for key in [k for k in self.rules if k[0] == f"role:{ev.role_id}"]:
                del self.rules[key]
        elif isinstance(ev, RoleAssigned):
            roles = self.members.setdefault(ev.user_id, set())
            (roles.add if ev.assigned else roles.discard)(ev.role_id)
        elif isinstance(ev, RuleSet):
            key = (ev.subject, ev.scope, ev.permission)
            if ev.effect == "clear":
                self.rules.pop(key, None)
            else:
                self.rules[key] = ev.effect

    def roles_of(self, user_id: str, is_owner: bool) -> set[str]:
        roles = {EVERYONE, *self.members.get(user_id, set())}
        if is_owner:
            roles.add(OWNER)
        return roles

    def rank(self, user_id: str, is_owner: bool) -> int:
        """The user's highest built-in rank (0 for `everyone` and custom roles)."""
        return max(RANKS.get(r, 0) for r in self.roles_of(user_id, is_owner))

    def decide(
        self,
        user_id: str,
        is_owner: bool,
        permission: str,
        room: str = "",
        group: str = "",
        is_dm: bool = False,
        creator: str = "",
    ) -> Verdict:
        if permission not in PERMISSIONS:
            return Verdict(False, f"unknown permission {permission}")
        if is_dm and permission in DM_DENIED:
            return Verdict(False, "DM privacy boundary")
        if is_owner:
            return Verdict(True, "owner")
        roles = self.roles_of(user_id, is_owner)
        subjects = [f"user:{user_id}", *(f"role:{r}" for r in sorted(roles))]
        scopes = [
            "server",
            *([f"group:{group}"] if group else []),
            *([f"room:{room}"] if room else []),
        ]
        matched = [
            (s, sc, self.rules[(s, sc, permission)])
            for s in subjects
            for sc in scopes
            if (s, sc, permission) in self.rules
        ]
        for s, sc, effect in matched:
            if effect == "deny":
                return Verdict(False, f"denied to {s} at {sc}")
        for s, sc, effect in matched:
            if effect == "allow":
                return Verdict(True, f"allowed to {s} at {sc}")
        for role in sorted(roles):
            if permission in DEFAULTS.get(role, ()):
                return Verdict(True, f"default of role {role}")
        if room and creator == user_id and permission in CREATOR:
            return Verdict(True, "room creator")
        if is_dm and permission in DM_PARTICIPANT:
            return Verdict(True, "DM participant")
        return Verdict(False, "no rule allows it")

    def allowed(self, *args: Any, **kwargs: Any) -> bool:
        return self.decide(*args, **kwargs).allowed


def check_subject(state: RbacState, subject: str) -> None:
    kind, _, ident = subject.partition(":")
    if (kind == "role" and ident in state.roles) or (kind == "user" and ident):
        return
    raise NotFoundError("no such role or user")


class RbacActor(EntityActor):
    """Serialises every change to roles and rules."""

    def __init__(self, store: EventStore) -> None:
        super().__init__(RBAC, store)
        self.state = RbacState()

    def apply(self, recorded: Recorded) -> None:
        self.state.apply(recorded)

    def decide(self, command: Any) -> Decision:
        s = self.state
        if isinstance(command, CreateRole):
            if command.role_id in s.roles:
                raise ConflictError("role exists")
            return Decision([RoleCreated(command.role_id, _name(command.name))])
        if isinstance(command, RenameRole | DeleteRole):
            if command.role_id not in s.roles:
                raise NotFoundError("no such role")
            if command.role_id in BUILT_IN:
                raise ForbiddenError("built-in roles cannot be renamed or deleted")
            if isinstance(command, DeleteRole):
                return Decision([RoleDeleted(command.role_id)])
            return Decision([RoleRenamed(command.role_id, _name(command.name))])
        if isinstance(command, AssignRole):
            if command.role_id not in s.roles or command.role_id in (EVERYONE, OWNER):
                raise InvalidInputError("that role cannot be assigned")
            return Decision([RoleAssigned(command.role_id, command.user_id, command.assigned)])
        if isinstance(command, SetRule):
            check_subject(s, command.subject)
            if command.permission not in PERMISSIONS:
                raise InvalidInputError(f"unknown permission {command.permission}")
            if command.effect not in ("allow", "deny", "clear"):
                raise InvalidInputError("effect must be allow, deny or clear")
            return Decision(
                [RuleSet(command.subject, command.scope, command.permission, command.effect)]
            )
        raise InvalidInputError(f"rbac actor cannot handle {type(command).__name__}")


def _name(name: str) -> str:
    value = name.strip()
    if not 1 <= len(value) <= 64:
        raise InvalidInputError("role name must be 1 to 64 characters")
    return value


class RbacView(RbacState):
    """Read model: the same state, fed by the projector."""

    snapshot_name = "rbac"
    snapshot_schema = 1

    def export_state(self) -> dict[str, Any]:
        return {
            "roles": dict(self.roles),
            "members": {u: sorted(r) for u, r in self.members.items()},
            "rules": sorted([*k, v] for k, v in self.rules.items()),
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        self.roles = {str(k): str(v) for k, v in state["roles"].items()}
        self.members = {str(u): set(r) for u, r in state["members"].items()}
        self.rules = {(s, sc, p): e for s, sc, p, e in state["rules"]}

    def apply(self, recorded: Recorded) -> None:
        if recorded.envelope.entity == RBAC:
            super().apply(recorded)


def permissions_allowed(state: RbacState, **kwargs: Any) -> Iterable[str]:
    return [p for p in PERMISSIONS if state.allowed(permission=p, **kwargs)]
