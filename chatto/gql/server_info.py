"""Resolvers of ``ServerInfo`` (the parent value is the ``Services``)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import trio
from ariadne import ObjectType

from chatto import __version__
from chatto.errors import UnavailableError
from chatto.services import Services

if TYPE_CHECKING:
    from chatto.gql.context import Info

server_info = ObjectType("ServerInfo")


@server_info.field("name")
def resolve_name(services: Services, _info: Info) -> str:
    return services.server_view.name


@server_info.field("description")
def resolve_description(services: Services, _info: Info) -> str:
    return services.server_view.description


@server_info.field("version")
def resolve_version(_services: Services, _info: Info) -> str:
    return __version__


@server_info.field("streamHead")
async def resolve_stream_head(services: Services, _info: Info) -> int:
    return await services.store.head()


@server_info.field("projectedPosition")
def resolve_projected(services: Services, _info: Info) -> int:
    return services.projector.position


@server_info.field("natsRoundTripMs")
async def resolve_nats_rtt(services: Services, _info: Info) -> float | None:
    start = time.perf_counter()
    with trio.move_on_after(2):
        try:
            await services.bridge.ping()
        except UnavailableError:
            return None
        return round((time.perf_counter() - start) * 1000, 3)
    return None


@server_info.field("liveActors")
def resolve_live_actors(services: Services, _info: Info) -> int:
    return services.actors.live_count()


@server_info.field("presenceEnabled")
def resolve_presence_enabled(services: Services, _info: Info) -> bool:
    return services.messaging.live.presence_enabled
