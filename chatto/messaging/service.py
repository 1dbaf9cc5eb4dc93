"""Room and message operations for the API layer.

The API layer checks permissions first; this service turns a request into
actor commands, waits for the result to be projected (read-your-writes),
and returns read-model views. Retracted bodies are also erased from the
stream (JetStream secure delete) once the retraction is stored.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

from actors.ids import new_id
from actors.notifications.feed import NotificationFeed
from actors.projector import Projector
from actors.rooms.commands import (
    ArchiveRoom,
    Ban,
    CreateGroup,
    CreateRoom,
    EditMessage,
    Join,
    Leave,
    PinMessage,
    PostedBefore,
    PostMessage,
    React,
    Removal,
    RetractMessage,
    Unban,
    UpdateRoom,
)
from actors.rooms.directory import GroupView, MessageView, RoomDirectory, RoomView
from actors.runtime import ActorSystem
from actors.users.directory import UserDirectory
from chatto.bus.bridge import NatsBridge
from chatto.bus.storage import EVENT_STREAM, OBJECTS
from chatto.errors import (
    ConflictError,
    ForbiddenError,
    InvalidInputError,
    NotFoundError,
    StaleWriteError,
)
from chatto.messaging.attachments import attachment_object
from chatto.messaging.cold import ColdReader
from chatto.messaging.history import (
    DEFAULT_PAGE,
    MAX_PAGE,
    History,
    Page,
    clamp_limit,
    decode_cursor,
    encode_cursor,
)
from chatto.messaging.keys import BodyKeys
from chatto.messaging.live import LiveRelay
from chatto.messaging.mentions import Mentions, find_mentions
from chatto.messaging.notifications import Notifications
from chatto.messaging.unread import ReadMarkers

MAX_NAME = 80
SEED_ROOMS = (
    ("general", "general", "Talk about anything", False),
    ("announcements", "announcements", "News from the server team", True),
)


def _dm_id(digest: bytes) -> str:
    return "dm-" + base64.b32encode(digest[:16]).decode().rstrip("=").lower()


def dm_id(key: bytes, people: list[str]) -> str:
    """A DM's id: HMAC under a server key of the sorted participants.

    Unkeyed, anyone could compute the id of any two users' DM and probe it;
    keyed, the id says nothing to whoever does not hold ``core.secret_key``.
    """
    return _dm_id(hmac.new(key, "\x00".join(people).encode(), hashlib.sha256).digest())


class MessagingService:
    """Everything rooms and messages; callers are already authorised."""

    def __init__(
        self,
        actors: ActorSystem,
        projector: Projector,
        rooms: RoomDirectory,
        users: UserDirectory,
        keys: BodyKeys,
        live: LiveRelay,
        bridge: NatsBridge,
        dm_key: bytes,
        feed: NotificationFeed | None = None,
    ) -> None:
        self._actors = actors
        self._dm_key = dm_key
        self._projector = projector
        self.rooms = rooms
        self.cold = ColdReader(bridge, rooms)
        self.history = History(rooms, self.cold)
        self._users = users
        self.keys = keys
        self.live = live
        self._bridge = bridge
        # The projector's model in a server; a bare one (never fed) otherwise.
        self.feed = feed if feed is not None else NotificationFeed(rooms)
        self.markers = ReadMarkers(bridge, rooms, live, self.feed)
        self.notifications = Notifications(
            actors, projector, rooms, self.feed, self.markers, self.cold
        )

    async def _room_cmd(self, room_id: str, command: object) -> object:
        done = await self._actors.ask("room", room_id, command)
        if done.recorded:
            await self._projector.wait_for(done.last_seq)
        return done.value

    def room(self, room_id: str) -> RoomView:
        room = self.rooms.rooms.get(room_id)
        if room is None:
            raise NotFoundError("no such room")
        return room

    # --- rooms --------------------------------------------------------------------
    async def seed(self) -> list[str]:
        """Create #general and #announcements on a fresh server; the ids created."""
        created = []
        for room_id, name, topic, read_only in SEED_ROOMS:
            if room_id not in self.rooms.rooms:
                try:
                    await self._room_cmd(
                        room_id, CreateRoom(name, topic, "channel", "", read_only=read_only)
                    )
                except ConflictError as exc:
                    if isinstance(exc, StaleWriteError):
                        raise
                    continue  # another process on the same NATS seeded it first
                created.append(room_id)
        return created

    async def join_seeded(self, user_id: str) -> None:
        for room_id, *_ in SEED_ROOMS:
            if room_id in self.rooms.rooms:
                await self._room_cmd(room_id, Join(user_id))

    async def create_room(self, user_id: str, name: str, topic: str, group_id: str) -> RoomView:
        name, topic = _check_name(name), topic.strip()[:500]
        if group_id and group_id not in self.rooms.groups:
            raise NotFoundError("no such room group")
        room_id = new_id()
        await self._room_cmd(room_id, CreateRoom(name, topic, "channel", user_id, group_id))
        return self.room(room_id)

    async def start_dm(self, user_id: str, others: list[str]) -> RoomView:
        people = sorted(set([user_id, *others]))
        if len(people) < 2:
            raise InvalidInputError("a DM needs at least one other participant")
        for uid in people:
            if self._users.get(uid) is None:
                raise NotFoundError("no such user")
        room_id = self._existing_dm(user_id, people) or dm_id(self._dm_key, people)
        await self._room_cmd(room_id, CreateRoom("", "", "dm", user_id, participants=tuple(people)))
        return self.room(room_id)

    def _existing_dm(self, user_id: str, people: list[str]) -> str | None:
        """The DM these people already have, whatever its id.

        A room's id is in every one of its stored events, so it never
        changes: a DM made before ids were keyed (or under another
        ``core.secret_key``, restored from a backup) is found here and kept.
        """
        for room_id in self.rooms.rooms_of(user_id):
            room = self.rooms.rooms.get(room_id)
            if room is not None and room.kind == "dm" and sorted(room.participants) == people:
                return room_id
        return None

    async def update_room(
        self, by: str, room_id: str, name: str, topic: str, group: str
    ) -> RoomView:
        self.room(room_id)
        if group and group not in self.rooms.groups:
            raise NotFoundError("no such room group")
        await self._room_cmd(room_id, UpdateRoom(by, _check_name(name), topic.strip()[:500], group))
        return self.room(room_id)

    async def archive(self, by: str, room_id: str, archived: bool) -> RoomView:
        await self._room_cmd(room_id, ArchiveRoom(by, archived))
        return self.room(room_id)

    async def create_group(self, user_id: str, name: str) -> GroupView:
        group_id = new_id()
        done = await self._actors.ask("group", group_id, CreateGroup(name, user_id))
        await self._projector.wait_for(done.last_seq)
        return self.rooms.groups[group_id]

    async def join(self, user_id: str, room_id: str) -> RoomView:
        self.room(room_id)
        await self._room_cmd(room_id, Join(user_id))
        return self.room(room_id)

    async def leave(self, user_id: str, room_id: str) -> None:
        await self._room_cmd(room_id, Leave(user_id))

    async def ban(self, by: str, room_id: str, user_id: str, reason: str, until_ms: int) -> None:
        await self._room_cmd(room_id, Ban(by, user_id, reason, until_ms))

    async def unban(self, by: str, room_id: str, user_id: str) -> None:
        await self._room_cmd(room_id, Unban(by, user_id))

    # --- messages -------------------------------------------------------------------
    async def post(
        self,
        author_id: str,
        room_id: str,
        body: str,
        in_reply_to: str = "",
        thread_root: str = "",
        echo: bool = False,
        attachments: tuple[str, ...] = (),
        client_key: str = "",
        may_mention_room: bool = False,
    ) -> MessageView:
        """Post; with ``client_key``, a retry of a stored post returns that message.

        ``may_mention_room``: the caller holds ``message.mention-room`` here.
        """
        room = self.room(room_id)
        key = await self.keys.author_key(author_id)
        found = self._mentions(room, author_id, body, may_mention_room)
        cmd = PostMessage(
            author_id,
            body,
            key,
            in_reply_to,
            thread_root,
            echo,
            attachments,
            client_key,
            found.user_ids,
            found.room,
        )
        posted = await self._room_cmd(room_id, cmd)
        if isinstance(posted, PostedBefore):
            # Stored earlier, perhaps through another process: this process's
            # read model may not have reached it yet.
            await self._projector.wait_for(posted.seq)
            return await self.message(room_id, posted.message_id)
        return await self.message(room_id, str(posted))

    async def edit(
        self,
        author_id: str,
        room_id: str,
        event_id: str,
        body: str,
        may_mention_room: bool = False,
    ) -> MessageView:
        room = self.room(room_id)
        key = await self.keys.author_key(author_id)
        found = self._mentions(room, author_id, body, may_mention_room)
        edit = EditMessage(author_id, event_id, body, key, found.user_ids, found.room)
        await self._room_cmd(room_id, edit)
        return await self.message(room_id, event_id)

    def _mentions(self, room: RoomView, author_id: str, body: str, may_room: bool) -> Mentions:
        def user_id_of(login: str) -> str | None:
            user = self._users.find_login(login)
            return None if user is None else user.id

        # In a DM every message reaches every participant: @room adds nothing risky.
        may_room = may_room or room.kind == "dm"
        return find_mentions(body, author_id, room.members, user_id_of, may_room)

    async def retract(self, by: str, room_id: str, event_id: str, as_moderator: bool) -> None:
        removal = await self._room_cmd(room_id, RetractMessage(by, event_id, as_moderator))
        assert isinstance(removal, Removal)
        for seq in removal.seqs:
            await self._bridge.erase_msg(EVENT_STREAM, int(seq))
        for attachment in removal.attachments:
            await self._bridge.obj_erase(OBJECTS, attachment_object(room_id, attachment))

    async def react(
        self, user_id: str, room_id: str, event_id: str, shortcode: str, add: bool
    ) -> MessageView:
        await self._room_cmd(room_id, React(user_id, event_id, shortcode, add))
        return await self.message(room_id, event_id)

    async def pin(self, by: str, room_id: str, event_id: str, pin: bool) -> None:
        """Pin or unpin (actors/rooms/pins.py); the caller checked message.pin."""
        self.room(room_id)
        await self._room_cmd(room_id, PinMessage(by, event_id, pin))

    async def message(self, room_id: str, event_id: str) -> MessageView:
        """The room's message, hot or read back from the stream (issue #22)."""
        msg = await self.cold.message(room_id, event_id)
        if msg is None:
            raise NotFoundError("no such message")
        return msg

    # --- history -------------------------------------------------------------------
    async def page(
        self,
        room_id: str,
        before: str | None,
        after: str | None,
        limit: int | None,
        thread_root: str = "",
    ) -> Page:
        return await self.history.page(room_id, before, after, limit, thread_root)

    async def around(self, room_id: str, event_id: str, limit: int | None) -> Page:
        await self.rooms.ensure(room_id)
        facts = self.rooms.facts(room_id, event_id)
        if facts is None:
            raise NotFoundError("no such message")
        return await self.history.around(facts, limit)

    # --- read markers (chatto/messaging/unread.py) -------------------------------------
    async def mark_read(self, user_id: str, room_id: str, event_id: str, thread_root: str) -> None:
        await self.markers.mark(user_id, room_id, event_id, thread_root)

    async def read_marker(self, user_id: str, room_id: str, thread_root: str) -> str | None:
        marker = await self.markers.marker(user_id, room_id, thread_root)
        return marker.event_id if marker else None


def _check_name(name: str) -> str:
    value = name.strip().lstrip("#")
    if not 1 <= len(value) <= MAX_NAME:
        raise InvalidInputError(f"room name must be 1 to {MAX_NAME} characters")
    return value


def require_member(rooms: RoomDirectory, room_id: str, user_id: str) -> RoomView:
    room = rooms.rooms.get(room_id)
    if room is None or user_id not in room.members:
        # Non-members cannot tell a private room from a missing one.
        if room is not None and room.kind == "channel":
            raise ForbiddenError("join the room first")
        raise NotFoundError("no such room")
    return room


__all__ = [
    "DEFAULT_PAGE",
    "MAX_PAGE",
    "MessagingService",
    "Page",
    "clamp_limit",
    "decode_cursor",
    "encode_cursor",
    "require_member",
]
