"""Resolvers of ``Subscription``: sources read bounded hub subscribers."""

from __future__ import annotations

import datetime
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from ariadne import SubscriptionType

from actors.events import SERVER, Recorded
from chatto.errors import BusyError

if TYPE_CHECKING:
    from chatto.gql.context import Info

subscription = SubscriptionType()


@subscription.source("serverEvents")
async def source_server_events(_obj: Any, info: Info) -> AsyncGenerator[Recorded, None]:
    hub = info.context.services.hub
    with hub.subscribe([SERVER.key]) as sub:
        async for rec in sub.receive:
            yield rec
        if sub.dropped:
            raise BusyError("slow consumer: subscription dropped")


@subscription.field("serverEvents")
def resolve_server_event(rec: Recorded, _info: Info) -> dict[str, Any]:
    env = rec.envelope
    at = datetime.datetime.fromtimestamp(env.at_ms / 1000, tz=datetime.UTC)
    return {"id": env.id, "type": env.event.TYPE, "seq": rec.seq, "at": at.isoformat()}
