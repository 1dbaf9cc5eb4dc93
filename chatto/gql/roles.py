"""Resolvers for roles and permissions (management and introspection)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ariadne import MutationType, QueryType

from actors.ids import new_id
from actors.rbac import (
    BUILT_IN,
    PERMISSIONS,
    AssignRole,
    CreateRole,
    DeleteRole,
    RenameRole,
    SetRule,
)
from chatto.errors import NotFoundError
from chatto.gql.rooms import viewer_of

if TYPE_CHECKING:
    from chatto.gql.context import Info

roles_query = QueryType()
roles_mutation = MutationType()


def _role(info: Info, role_id: str) -> dict[str, Any]:
    rbac = info.context.services.permissions.rbac
    if role_id not in rbac.roles:
        raise NotFoundError("no such role")
    members = [u for u, roles in rbac.members.items() if role_id in roles]
    if role_id == "owner":
        members = [u.id for u in info.context.services.directory.users.values() if u.is_owner]
    return {
        "id": role_id,
        "name": rbac.roles[role_id],
        "builtIn": role_id in BUILT_IN,
        "memberIds": sorted(members),
    }


async def _rbac(info: Info, command: object) -> Any:
    services = info.context.services
    done = await services.actors.ask("rbac", "", command)
    if done.recorded:
        await services.projector.wait_for(done.last_seq)
    return done.value


@roles_query.field("roles")
def resolve_roles(_obj: Any, info: Info) -> list[dict[str, Any]]:
    return [_role(info, r) for r in info.context.services.permissions.rbac.roles]


@roles_query.field("viewerPermissions")
def resolve_viewer_permissions(_obj: Any, info: Info, roomId: str | None = None) -> list[str]:
    viewer, perms = viewer_of(info), info.context.services.permissions
    return [p for p in PERMISSIONS if perms.allowed(viewer, p, roomId or "")]


@roles_query.field("explainPermission")
def resolve_explain(
    _obj: Any, info: Info, userId: str, permission: str, roomId: str | None = None
) -> dict[str, Any]:
    user = info.context.services.directory.get(userId)
    if user is None:
        raise NotFoundError("no such user")
    verdict = info.context.services.permissions.decide(user, permission, roomId or "")
    return {"allowed": verdict.allowed, "reason": verdict.reason}


@roles_mutation.field("createRole")
async def resolve_create_role(_obj: Any, info: Info, name: str) -> dict[str, Any]:
    role_id = new_id().lower()
    await _rbac(info, CreateRole(role_id, name))
    return _role(info, role_id)


@roles_mutation.field("renameRole")
async def resolve_rename_role(_obj: Any, info: Info, roleId: str, name: str) -> dict[str, Any]:
    await _rbac(info, RenameRole(roleId, name))
    return _role(info, roleId)


@roles_mutation.field("deleteRole")
async def resolve_delete_role(_obj: Any, info: Info, roleId: str) -> bool:
    await _rbac(info, DeleteRole(roleId))
    return True


async def _assign(info: Info, role_id: str, user_id: str, assigned: bool) -> bool:
    target = info.context.services.directory.get(user_id)
    if target is None:
        raise NotFoundError("no such user")
    perms, viewer = info.context.services.permissions, viewer_of(info)
    perms.require_outranks(viewer, target)
    perms.require_role_below(viewer, role_id)
    await _rbac(info, AssignRole(role_id, user_id, assigned))
    return True


@roles_mutation.field("assignRole")
async def resolve_assign(_obj: Any, info: Info, roleId: str, userId: str) -> bool:
    return await _assign(info, roleId, userId, True)


@roles_mutation.field("revokeRole")
async def resolve_revoke(_obj: Any, info: Info, roleId: str, userId: str) -> bool:
    return await _assign(info, roleId, userId, False)


@roles_mutation.field("setPermission")
async def resolve_set_permission(
    _obj: Any, info: Info, subject: str, scope: str, permission: str, effect: str
) -> bool:
    services = info.context.services
    target = (
        services.directory.get(subject.partition(":")[2]) if subject.startswith("user:") else None
    )
    services.permissions.require_subject_below(viewer_of(info), subject, target)
    await _rbac(info, SetRule(subject, scope, permission, effect.lower()))
    return True
