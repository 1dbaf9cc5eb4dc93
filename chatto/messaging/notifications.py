"""Notifications, levels and followed threads for the API layer.

Feeds are the ``NotificationFeed`` read model (``actors/notifications/feed.py``);
settings and dismissals are events of the user's ``notify`` entity, appended
through ``NotifyActor`` and awaited in the projector (read-your-writes), so
every process, and a restart, agrees. Callers are already authenticated;
what needs the read model (is this notification mine? is that a thread of
a room I am in?) is checked here, and an id that is not the viewer's is
answered exactly like an unknown one.
"""

from __future__ import annotations

import bisect

import attrs

from actors.notifications.actor import Dismiss, DismissAll, FollowThread, SetLevel
from actors.notifications.feed import Notice, NotificationFeed
from actors.projector import Projector
from actors.rooms.directory import MessageView, RoomDirectory, RoomView
from actors.rooms.index import RETRACTED
from actors.runtime import ActorSystem
from chatto.concurrency import for_each_bounded
from chatto.errors import InvalidInputError, NotFoundError
from chatto.messaging.cold import ColdReader
from chatto.messaging.unread import MARKER_READS, ReadMarkers

DEFAULT_PAGE = 20
MAX_PAGE = 100


@attrs.frozen
class NoticePage:
    items: list[Notice]
    has_more: bool


@attrs.frozen
class FollowedThread:
    room: RoomView
    root: MessageView
    unread: int


class Notifications:
    """The viewer's notification feed, settings and followed threads."""

    def __init__(
        self,
        actors: ActorSystem,
        projector: Projector,
        rooms: RoomDirectory,
        feed: NotificationFeed,
        markers: ReadMarkers,
        cold: ColdReader,
    ) -> None:
        self._actors = actors
        self._projector = projector
        self._rooms = rooms
        self._cold = cold
        self.feed = feed
        self._markers = markers

    async def _cmd(self, user_id: str, command: object) -> None:
        done = await self._actors.ask("notify", user_id, command)
        if done.recorded:
            await self._projector.wait_for(done.last_seq)

    def visible(self, user_id: str, notice: Notice) -> bool:
        """Still readable by the user: a member of its room, the message not retracted."""
        msg = self._rooms.facts(notice.room_id, notice.message_id)
        return (
            msg is not None and not msg.retracted and self._rooms.is_member(notice.room_id, user_id)
        )

    def page(self, user_id: str, first: int | None, after_seq: int | None) -> NoticePage:
        """Newest first; ``after_seq`` is the previous page's last cursor."""
        n = DEFAULT_PAGE if first is None else first
        if not 1 <= n <= MAX_PAGE:
            raise InvalidInputError(f"first must be 1 to {MAX_PAGE}")
        items = [x for x in self.feed.notices(user_id) if self.visible(user_id, x)]
        if after_seq is not None:
            items = [x for x in items if x.seq < after_seq]
        return NoticePage(items[:n], len(items) > n)

    def count(self, user_id: str) -> int:
        return sum(1 for x in self.feed.notices(user_id) if self.visible(user_id, x))

    async def dismiss(self, user_id: str, notification_id: str) -> None:
        notice = self.feed.get(user_id, notification_id)
        if notice is None:
            raise NotFoundError("no such notification")
        await self._cmd(user_id, Dismiss((notice.message_id,)))

    async def dismiss_all(self, user_id: str) -> int:
        """Dismiss what the viewer has now (not what arrives meanwhile); how many."""
        notices = self.feed.notices(user_id)
        if notices:
            await self._cmd(user_id, DismissAll(notices[0].seq))
        return len(notices)

    async def set_level(self, user_id: str, room_id: str, level: str, muted: bool) -> None:
        await self._cmd(user_id, SetLevel(room_id, level, muted))

    async def thread_root(self, room_id: str, root_id: str) -> MessageView:
        """A thread root of ``room_id`` (any top-level message can start one)."""
        msg = await self._cold.message(room_id, root_id)
        if msg is None or msg.retracted or msg.thread_root:
            raise NotFoundError("no such thread")
        return msg

    async def follow(self, user_id: str, room_id: str, root_id: str, follow: bool) -> MessageView:
        root = await self.thread_root(room_id, root_id)
        await self._cmd(user_id, FollowThread(room_id, root_id, follow))
        return root

    async def thread_unread(self, user_id: str, room: RoomView, root_id: str) -> int:
        """Replies after the viewer's thread marker, not theirs, not retracted."""
        await self._rooms.ensure(room.id)
        if root_id not in room.threads:
            return 0
        marker = await self._markers.marker(user_id, room.id, root_id)
        await self._rooms.ensure(room.id)
        line = room.threads.get(root_id)
        if line is None:
            return 0
        start = bisect.bisect_right(line.seqs, marker.seq if marker else 0)
        # From the compact columns (hot or cold alike): no view needed.
        posts, me = room.posts, self._rooms.authors.find(user_id)
        unread = 0
        for seq in line.seqs[start:]:
            at = posts.at_seq(seq)
            if at >= 0 and not posts.flags[at] & RETRACTED and posts.authors[at] != me:
                unread += 1
        return unread

    async def followed_threads(self, user_id: str) -> list[FollowedThread]:
        """Followed threads still readable, newest root first, with unread
        counts. One marker read per thread, ``MARKER_READS`` at a time.
        """
        wanted: list[tuple[RoomView, int]] = []
        for room_id, seq in self.feed.followed(user_id):
            room = self._rooms.rooms.get(room_id)
            if room is None or user_id not in room.members:
                continue
            await self._rooms.ensure(room_id)
            at = room.posts.at_seq(seq)
            if at >= 0 and not room.posts.flags[at] & RETRACTED:
                wanted.append((room, seq))
        out: list[FollowedThread] = []

        async def one(item: tuple[RoomView, int]) -> None:
            room, seq = item
            root = room.hot.get(seq)
            if root is None:  # an old root: from the stream
                found = await self._cold.views(room.id, [seq])
                root = found[0] if found and found[0].seq == seq else None
            if root is not None and not root.retracted:
                unread = await self.thread_unread(user_id, room, root.id)
                out.append(FollowedThread(room, root, unread))

        await for_each_bounded(wanted, one, MARKER_READS)
        return sorted(out, key=lambda t: t.root.seq, reverse=True)
