"""Server settings: name, description and logo, and the sidebar's layout
(room groups renamed, deleted, ordered; rooms ordered inside a group).

All of it is server state in the event log (``actors/server.py``,
``actors/groups.py``): once set it overrides ``core.server_name``. The logo
is public branding, so it is stored in clear in the object store and served
to anyone (``/assets/server-logo``); only raster images whose bytes match
their declared type are accepted, never SVG or HTML.
"""

from __future__ import annotations

from actors.groups import DeleteGroup, RenameGroup
from actors.ids import new_id
from actors.server import OrderGroups, OrderRooms, RemoveServerLogo, SetServerLogo, SetServerProfile
from chatto.bus.storage import OBJECTS
from chatto.errors import InvalidInputError, NotFoundError
from chatto.messaging.attachments import AVATAR_TYPES, MAX_AVATAR_BYTES, Upload
from chatto.services import Services

LOGO_OBJECT = "server.logo"
LOGO_PATH = "/assets/server-logo"
# What the first bytes of each accepted type must be (an HTML or SVG file
# declared as image/png is refused, not merely served sandboxed).
MAGIC: dict[str, tuple[bytes, ...]] = {
    "image/png": (b"\x89PNG\r\n\x1a\n",),
    "image/jpeg": (b"\xff\xd8\xff",),
    "image/gif": (b"GIF87a", b"GIF89a"),
}


def looks_like(content_type: str, data: bytes) -> bool:
    """Whether ``data`` starts the way a ``content_type`` image does."""
    if content_type == "image/webp":
        return data[:4] == b"RIFF" and data[8:12] == b"WEBP"
    return any(data.startswith(m) for m in MAGIC.get(content_type, ()))


class ServerSettings:
    """The settings operations over the running services (holds no state)."""

    def __init__(self, services: Services) -> None:
        self._s = services

    async def _server(self, command: object) -> None:
        done = await self._s.actors.ask("server", "", command)
        await self._s.projector.wait_for(done.last_seq)

    async def update(self, name: str, description: str) -> None:
        await self._server(SetServerProfile(name, description.strip()))

    async def set_logo(self, file: Upload) -> None:
        ctype = file.content_type.split(";")[0].strip().lower()
        if ctype not in AVATAR_TYPES or not looks_like(ctype, file.data):
            raise InvalidInputError("the logo must be a PNG, JPEG, GIF or WebP image")
        if len(file.data) > MAX_AVATAR_BYTES:
            raise InvalidInputError(f"the logo must be at most {MAX_AVATAR_BYTES} bytes")
        await self._s.bridge.obj_put(OBJECTS, LOGO_OBJECT, file.data)
        await self._server(SetServerLogo(ctype, new_id()))

    async def remove_logo(self) -> None:
        if self._s.server_view.logo is None:
            return
        await self._server(RemoveServerLogo())
        await self._s.bridge.obj_delete(OBJECTS, LOGO_OBJECT)

    def logo_url(self) -> str | None:
        logo = self._s.server_view.logo
        return f"{LOGO_PATH}?v={logo[1]}" if logo else None

    async def _group(self, group_id: str, command: object) -> None:
        if group_id not in self._s.messaging.rooms.groups:
            raise NotFoundError("no such room group")
        done = await self._s.actors.ask("group", group_id, command)
        await self._s.projector.wait_for(done.last_seq)

    async def rename_group(self, group_id: str, name: str) -> None:
        await self._group(group_id, RenameGroup(name))

    async def delete_group(self, group_id: str) -> None:
        await self._group(group_id, DeleteGroup())

    async def order_groups(self, group_ids: list[str]) -> None:
        groups = self._s.messaging.rooms.groups
        if any(g not in groups for g in group_ids):
            raise NotFoundError("no such room group")
        await self._server(OrderGroups(tuple(group_ids)))

    async def order_rooms(self, group_id: str, room_ids: list[str]) -> None:
        """Order the channels of a group ("": the ungrouped ones)."""
        rooms = self._s.messaging.rooms
        if group_id and group_id not in rooms.groups:
            raise NotFoundError("no such room group")
        for room_id in room_ids:
            room = rooms.rooms.get(room_id)
            if room is None or room.kind != "channel" or room.group_id != group_id:
                raise NotFoundError("no such channel in that group")
        await self._server(OrderRooms(group_id, tuple(room_ids)))
