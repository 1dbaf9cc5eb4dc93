"""Resolvers for invite links (``createInvite``, ``invites``, ``revokeInvite``,
the ``Invite`` type) and ``ServerInfo.registration``.

``invite.manage`` is checked by the schema's ``@requires`` wrapper first
(in the room named by ``roomId``, which a DM outsider sees as no room).
"""

from __future__ import annotations

import datetime
import logging
import time
from typing import TYPE_CHECKING, Any

from ariadne import MutationType, ObjectType, QueryType

from actors.rooms.directory import RoomView
from actors.users.directory import UserRecord
from chatto.auth.invites import CreatedInvite, Invite
from chatto.errors import NotFoundError
from chatto.gql.rooms import viewer_of, visible_room
from chatto.services import Services

if TYPE_CHECKING:
    from chatto.gql.context import Info

log = logging.getLogger(__name__)

invites_query = QueryType()
invites_mutation = MutationType()
invite_type = ObjectType("Invite")
registration_info = ObjectType("ServerInfo")

MODES = {"open": "OPEN", "invite-only": "INVITE_ONLY", "closed": "CLOSED"}


def _iso(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, tz=datetime.UTC).isoformat()


@registration_info.field("registration")
def resolve_registration(services: Services, _info: Info) -> str:
    return MODES[services.accounts.settings.registration]


@invites_query.field("invites")
async def resolve_invites(_obj: Any, info: Info) -> list[Invite]:
    return await info.context.services.accounts.invites.list()


@invites_mutation.field("createInvite")
async def resolve_create_invite(
    _obj: Any,
    info: Info,
    expiresInSeconds: int | None = None,
    maxUses: int | None = None,
    roomId: str | None = None,
) -> dict[str, Any]:
    viewer = viewer_of(info)
    services = info.context.services
    room_id = ""
    if roomId:
        room = visible_room(info, roomId)
        if room is None or room.kind != "channel" or room.archived:
            raise NotFoundError("no such channel")
        room_id = room.id
    created: CreatedInvite = await services.accounts.invites.create(
        viewer.id, expiresInSeconds, maxUses, room_id
    )
    # Ids only: the code is a credential.
    log.info("invite %s created by %s", created.invite.id, viewer.id)
    base = services.config.webserver.url.rstrip("/")
    return {
        "invite": created.invite,
        "code": created.code,
        "url": f"{base}/invite#{created.code}",
    }


@invites_mutation.field("revokeInvite")
async def resolve_revoke_invite(_obj: Any, info: Info, id: str) -> bool:
    viewer = viewer_of(info)
    revoked = await info.context.services.accounts.invites.revoke(id)
    if revoked:
        log.info("invite %s revoked by %s", id, viewer.id)
    return revoked


@invite_type.field("room")
def resolve_room(invite: Invite, info: Info) -> RoomView | None:
    return visible_room(info, invite.room_id) if invite.room_id else None


@invite_type.field("createdBy")
def resolve_created_by(invite: Invite, info: Info) -> UserRecord | None:
    return info.context.services.directory.get(invite.created_by)


@invite_type.field("createdAt")
def resolve_created_at(invite: Invite, _info: Info) -> str:
    return _iso(invite.created_at)


@invite_type.field("expiresAt")
def resolve_expires_at(invite: Invite, _info: Info) -> str:
    return _iso(invite.expires_at)


@invite_type.field("maxUses")
def resolve_max_uses(invite: Invite, _info: Info) -> int:
    return invite.max_uses


@invite_type.field("usable")
def resolve_usable(invite: Invite, _info: Info) -> bool:
    return invite.usable(time.time())
