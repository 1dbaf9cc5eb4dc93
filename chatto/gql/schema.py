"""Build the executable schema and run operations.

The SDL is ``chatto/gql/schema.graphql``, package data read through
``importlib.resources`` so an installed wheel finds it too. Every field
requires an authenticated viewer unless it (or its type) carries
``@public``: ``protect`` wraps the resolvers of the other fields. Errors are
formatted here: ``ChattoError`` keeps its message and code; anything else
becomes a generic "internal error" so no internals or secrets leak.
"""

from __future__ import annotations

import logging
from importlib import resources
from importlib.resources.abc import Traversable
from typing import Any

import ariadne
from graphql import (
    GraphQLError,
    GraphQLField,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLSchema,
    default_field_resolver,
)

from actors.rooms.directory import RoomView
from chatto.errors import ChattoError, UnauthenticatedError
from chatto.gql import trio_shim
from chatto.gql.admin import admin_query, admin_type
from chatto.gql.context import FAREWELL
from chatto.gql.invites import invite_type, invites_mutation, invites_query, registration_info
from chatto.gql.live_events import live_subscription
from chatto.gql.members import members_query, members_room
from chatto.gql.messages import attachment_type, message_mutation, message_type, reaction_type
from chatto.gql.mutation import mutation
from chatto.gql.notifications import BINDABLES as NOTIFY_BINDABLES
from chatto.gql.pins import pins_mutation, pins_room
from chatto.gql.profile import profile_mutation, user_status
from chatto.gql.query import query
from chatto.gql.roles import roles_mutation, roles_query
from chatto.gql.rooms import event_page, room_mutation, room_query, room_type
from chatto.gql.server_info import server_info
from chatto.gql.settings import (
    group_type,
    room_position,
    settings_mutation,
    settings_server_info,
)
from chatto.gql.subscription import subscription
from chatto.gql.unread import unread_query, unread_room, unread_summary
from chatto.gql.user import user_type

log = logging.getLogger(__name__)

# Upload values are put into the variables by the HTTP layer (multipart);
# they are never parsed from or serialized to JSON.
upload_scalar = ariadne.ScalarType("Upload")

# Package data, not a path next to the source tree: a wheel (or a zipped
# install) has no repository root.
SCHEMA_RESOURCE: Traversable = resources.files("chatto.gql") / "schema.graphql"


def load_sdl(path: Traversable = SCHEMA_RESOURCE) -> str:
    """The SDL text."""
    try:
        return path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ChattoError(f"cannot read GraphQL schema at {path}: {exc.strerror}") from exc


def _has_public(node: Any) -> bool:
    return bool(node is not None and any(d.name.value == "public" for d in node.directives or ()))


def _farewell(obj: Any) -> bool:
    """The SESSION_TERMINATED event (built by the server, never from input) still resolves."""
    return isinstance(obj, dict) and obj.get(FAREWELL) is True


def _require_viewer(resolver: Any, permission: str | None = None) -> Any:
    def check(obj: Any, info: GraphQLResolveInfo[Any], **kwargs: Any) -> Any:
        if kwargs.get("roomId"):
            # A DM the viewer is not in becomes a room that does not exist,
            # before the permission check (which would say "DM boundary").
            viewer = info.context.viewer
            if viewer is None:
                raise UnauthenticatedError("authentication required")
            perms = info.context.services.permissions
            kwargs["roomId"] = perms.visible_room_id(viewer, kwargs["roomId"])
        if permission is None:
            # Only a gate: the result does not depend on who passes it.
            if not info.context.is_authenticated() and not _farewell(obj):
                raise UnauthenticatedError("authentication required")
            return resolver(obj, info, **kwargs)
        viewer = info.context.viewer
        if viewer is None:
            raise UnauthenticatedError("authentication required")
        room_id = kwargs.get("roomId") or _room_of(obj)
        info.context.services.permissions.require(viewer, permission, room_id)
        return resolver(obj, info, **kwargs)

    check.__wrapped__ = resolver  # type: ignore[attr-defined]  # what it guards (gql/fanout.py)
    return check


def _room_of(obj: Any) -> str:
    """A field of a Room is checked in that room (creators hold rights there)."""
    return obj.id if isinstance(obj, RoomView) else ""


def required_permission(field: GraphQLField, directive_name: str = "requires") -> str | None:
    """The permission named by the field's ``@requires`` (or ``@selfOr``) directive."""
    node = field.ast_node
    for directive in (node.directives or ()) if node is not None else ():
        if directive.name.value == directive_name:
            for arg in directive.arguments or ():
                if arg.name.value == "permission":
                    return str(getattr(arg.value, "value", ""))
    return None


def protect(schema: GraphQLSchema) -> int:
    """Wrap every non-public field's resolver (and subscribe) with an auth check."""
    wrapped = 0
    for name, gtype in schema.type_map.items():
        if name.startswith("__") or not isinstance(gtype, GraphQLObjectType):
            continue
        if _has_public(gtype.ast_node):
            continue
        for field in gtype.fields.values():
            if _has_public(field.ast_node):
                continue
            _wrap(field)
            wrapped += 1
    return wrapped


def _wrap(field: GraphQLField) -> None:
    permission = required_permission(field)
    field.resolve = _require_viewer(field.resolve or default_field_resolver, permission)
    if field.subscribe is not None:
        field.subscribe = _require_viewer(field.subscribe, permission)


def build_schema(sdl: str | None = None) -> GraphQLSchema:
    """The executable schema with resolvers bound and auth checks installed."""
    trio_shim.install()
    schema = ariadne.make_executable_schema(
        sdl if sdl is not None else load_sdl(),
        query,
        mutation,
        server_info,
        subscription,
        user_type,
        room_query,
        room_mutation,
        room_type,
        unread_query,
        unread_room,
        unread_summary,
        members_query,
        members_room,
        pins_mutation,
        pins_room,
        event_page,
        message_type,
        attachment_type,
        reaction_type,
        message_mutation,
        upload_scalar,
        live_subscription,
        roles_query,
        roles_mutation,
        admin_query,
        admin_type,
        *NOTIFY_BINDABLES,
        invites_query,
        invites_mutation,
        invite_type,
        registration_info,
        settings_mutation,
        settings_server_info,
        group_type,
        room_position,
        profile_mutation,
        user_status,
    )
    protect(schema)
    return schema


def format_error(error: GraphQLError, debug: bool = False) -> dict[str, Any]:
    """Expose ChattoError messages and codes; hide everything else."""
    original = error.original_error
    formatted: dict[str, Any] = dict(error.formatted)
    if isinstance(original, ChattoError):
        formatted["message"] = original.message
        formatted["extensions"] = {"code": original.code}
        retry = getattr(original, "retry_after", None)
        if retry is not None:
            formatted["extensions"]["retryAfter"] = retry
    elif original is not None:
        log.error("unhandled error in resolver at %s", error.path, exc_info=original)
        formatted["message"] = "internal server error"
        formatted["extensions"] = {"code": "INTERNAL"}
    else:
        formatted.setdefault("extensions", {})
        formatted["extensions"].setdefault("code", "GRAPHQL_VALIDATION_FAILED")
    return formatted
