"""``Query.admin``: operational metadata, never content.

These resolvers read only the user directory (logins, emails, roles), room
metadata (names, member counts; DMs are not listed), NATS statistics and the
redacted configuration. They never touch message bodies, DM contents,
attachments, password hashes or the body-key path (a test counts KMS
unwraps and body openings around every admin query).
"""

from __future__ import annotations

import datetime
import json
from typing import TYPE_CHECKING, Any

from ariadne import ObjectType, QueryType

from chatto.bus.storage import EVENT_STREAM

if TYPE_CHECKING:
    from chatto.gql.context import Info

admin_query = QueryType()
admin_type = ObjectType("Admin")


@admin_query.field("admin")
def resolve_admin(_obj: Any, _info: Info) -> dict[str, Any]:
    return {}


@admin_type.field("users")
def resolve_users(_obj: Any, info: Info) -> list[dict[str, Any]]:
    rbac = info.context.services.permissions.rbac
    out = []
    for u in info.context.services.directory.users.values():
        if not u.registered or u.deleting:
            continue
        created = datetime.datetime.fromtimestamp(u.created_ms / 1000, tz=datetime.UTC)
        out.append(
            {
                "id": u.id,
                "login": u.login,
                "emails": list(u.emails),
                "isOwner": u.is_owner,
                "roles": sorted(rbac.roles_of(u.id, u.is_owner)),
                "createdAt": created.isoformat(),
            }
        )
    return sorted(out, key=lambda d: d["login"])


@admin_type.field("rooms")
def resolve_rooms(_obj: Any, info: Info) -> list[dict[str, Any]]:
    rooms = info.context.services.messaging.rooms.rooms.values()
    return [
        {"id": r.id, "name": r.name, "memberCount": len(r.members), "archived": r.archived}
        for r in sorted(rooms, key=lambda r: r.name)
        if r.kind == "channel"
    ]


@admin_type.field("nats")
async def resolve_nats(_obj: Any, info: Info) -> dict[str, Any]:
    services = info.context.services
    bridge = services.bridge
    js = bridge.js
    stream = await bridge.call(lambda: js.stream_info(EVENT_STREAM))
    return {
        "connected": bridge.connected,
        "reconnects": bridge.stats.reconnects,
        "streamMessages": int(stream.state.messages),
        "streamBytes": int(stream.state.bytes),
        "streamConsumers": int(stream.state.consumer_count),
        "liveActors": services.actors.live_count(),
        "liveSubscribers": services.hub.subscriber_count(),
    }


@admin_type.field("config")
def resolve_config(_obj: Any, info: Info) -> str:
    return json.dumps(info.context.services.config.redacted(), default=str, sort_keys=True)
