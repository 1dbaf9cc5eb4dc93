"""The notification read model: per-user feeds, followed threads, mention counts.

Derived, in stream order, from room events (who posted what, mentioning
whom, replying to whom, in which thread or DM) and each user's ``notify``
events (levels, follows, dismissals), so every process computes the same
feeds and a restart rebuilds them (replay or snapshot). A notification is
a reference (message id, room, kind, who, stream sequence): never a body,
which is opened on read like any message. When a message is retracted
(also by an account deletion's purge) its notifications go with it; a user
who leaves or is banned loses that room's notifications; a deleted user's
feed and settings are dropped. Feeds are capped (``MAX_PER_USER``, oldest
dropped): memory follows activity, not history.

Kinds: MENTION (``@login`` or ``@room``), REPLY (``inReplyTo`` one of mine),
THREAD_REPLY (a reply in a thread I follow), DM (a message in a DM),
MESSAGE (any other message, at level ALL). One notification per message
and user, of the first kind in that order. Levels per server and per room:
ALL (everything), MENTIONS (mentions, replies, followed threads; the
default for channels), NOTHING; DMs default to ALL unless the server level
is NOTHING; a muted room notifies nothing. Thread follows: the root's
author, anyone who replies or is mentioned in the thread, and explicit
``followThread``; an explicit unfollow is never overridden by an automatic
follow.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.events import Recorded
from actors.notifications.events import (
    AllNotificationsDismissed,
    LevelSet,
    NotificationsDismissed,
    ThreadFollowed,
    ThreadUnfollowed,
)
from actors.notifications.follows import Follows
from actors.notifications.mentions import MentionIndex
from actors.rooms.directory import RoomDirectory, RoomView
from actors.rooms.events import (
    MemberBanned,
    MemberDeleted,
    MemberLeft,
    MessageEdited,
    MessagePosted,
    MessageRetracted,
)
from actors.rooms.index import Facts
from actors.users.events import UserDeleted

MAX_PER_USER = 500
MENTION, REPLY, THREAD_REPLY, DM, MESSAGE = "MENTION", "REPLY", "THREAD_REPLY", "DM", "MESSAGE"
QUIET_KINDS = frozenset({MENTION, REPLY, THREAD_REPLY})  # what level MENTIONS lets through


@attrs.define
class Notice:
    message_id: str
    room_id: str
    kind: str
    actor_id: str
    seq: int  # when it arrived: the post, or the edit that added the mention
    thread_root: str = ""


@attrs.define
class Pref:
    level: str = ""  # "" inherits (rooms) or the default (server)
    muted: bool = False


class NotificationFeed:
    """Projection of notifications; reads ``RoomDirectory`` (applied before it)."""

    snapshot_name = "notifications"
    # 2: mentions as per-room arrays (no record per message); follows per
    #    user as arrays of thread keys, followers in the rooms' indexes.
    snapshot_schema = 2

    def __init__(self, rooms: RoomDirectory, max_per_user: int = MAX_PER_USER) -> None:
        self._rooms = rooms
        self.max_per_user = max_per_user
        self._reset()

    def _reset(self) -> None:
        self.feeds: dict[str, dict[str, Notice]] = {}
        self.by_message: dict[str, set[str]] = {}
        # Per room: mentions of main-timeline messages (counted by
        # Room.mentionCount) and of thread replies (only for edits and
        # retractions): what each live message mentions, 8 bytes an entry.
        self.index: dict[str, MentionIndex] = {}
        self.replies: dict[str, MentionIndex] = {}
        # Who follows a thread: in the room's index (RoomDirectory.thread_followers).
        self.unfollowed: dict[str, set[str]] = {}  # thread root -> explicit unfollows
        self.follows = Follows()  # user -> threads
        self.prefs: dict[str, dict[str, Pref]] = {}  # user -> room ("" server) -> pref
        self.all_level: dict[str, set[str]] = {}  # room ("" server) -> users at ALL

    # --- queries ----------------------------------------------------------------
    def mention_count(self, room_id: str, viewer: str, marker: int) -> int:
        index = self.index.get(room_id)
        return index.count(viewer, marker) if index is not None else 0

    def mentions_of(self, room_id: str, seq: int) -> tuple[tuple[str, ...], bool]:
        """Who the live message at ``seq`` mentions, and whether it says @room."""
        found = self._locate(room_id, seq)
        return (found[1], found[2]) if found is not None else ((), False)

    def _locate(self, room_id: str, seq: int) -> tuple[MentionIndex, tuple[str, ...], bool] | None:
        for indexes in (self.index, self.replies):
            index = indexes.get(room_id)
            if index is not None:
                users, room = index.of(seq)
                if users or room:
                    return index, users, room
        return None

    def notices(self, user_id: str) -> list[Notice]:
        """The user's notifications, newest first (at most ``max_per_user``)."""
        return list(reversed(self.feeds.get(user_id, {}).values()))

    def get(self, user_id: str, message_id: str) -> Notice | None:
        return self.feeds.get(user_id, {}).get(message_id)

    def pref(self, user_id: str, room_id: str) -> Pref:
        return self.prefs.get(user_id, {}).get(room_id, Pref())

    def level(self, user_id: str, room: RoomView) -> str:
        """The level in force for ``user_id`` in ``room``."""
        mine = self.prefs.get(user_id, {})
        pref = mine.get(room.id)
        if pref is not None and pref.muted:
            return "NOTHING"
        if pref is not None and pref.level:
            return pref.level
        server = mine.get("", Pref()).level
        if room.kind == "dm":
            return "NOTHING" if server == "NOTHING" else "ALL"
        return server or "MENTIONS"

    def followed(self, user_id: str) -> list[tuple[str, int]]:
        """(room, root's sequence) of every thread the user follows."""
        return self.follows.of(user_id)

    def follows_thread(self, user_id: str, room_id: str, root_seq: int) -> bool:
        return self.follows.has(user_id, room_id, root_seq)

    # --- projection ---------------------------------------------------------------
    def apply(self, rec: Recorded) -> None:
        entity, ev = rec.envelope.entity, rec.envelope.event
        if entity.kind == "notify":
            self._apply_setting(entity.id, rec)
        elif entity.kind == "user" and isinstance(ev, UserDeleted):
            self._forget_user(entity.id)
        elif entity.kind == "room":
            room = self._rooms.rooms.get(entity.id)
            if room is None:
                return
            if isinstance(ev, MessagePosted):
                self._posted(rec, ev, room)
            elif isinstance(ev, MessageEdited):
                self._edited(rec, ev, room)
            elif isinstance(ev, MessageRetracted):
                self._retracted(room, ev.target_id)
            elif isinstance(ev, MemberLeft | MemberBanned | MemberDeleted):
                self._left(ev.user_id, room.id)

    def _posted(self, rec: Recorded, ev: MessagePosted, room: RoomView) -> None:
        msg_id = rec.envelope.id
        main = not ev.thread_root or ev.echo
        self._set_mentions(room.id, ev.author_id, rec.seq, ev.mentions, ev.mention_room, main)
        if ev.thread_root:
            root = self._rooms.facts(room.id, ev.thread_root)
            if root is not None:
                self._auto_follow(room.id, root, (root.author_id, ev.author_id, *ev.mentions))
        targets = room.members if ev.mention_room else ev.mentions
        replied = self._rooms.facts(room.id, ev.in_reply_to) if ev.in_reply_to else None
        context = (replied.author_id if replied is not None else "", ev.thread_root)
        for user, kind in self._recipients(room, ev.author_id, targets, context).items():
            self._notify(user, Notice(msg_id, room.id, kind, ev.author_id, rec.seq, ev.thread_root))

    def _recipients(
        self, room: RoomView, author: str, mentioned: Any, context: tuple[str, str] | None
    ) -> dict[str, str]:
        """Who a message notifies, and as what. ``context``: (the author of the
        message it replies to, its thread root) for the other kinds; None for
        mentions alone."""
        out = dict.fromkeys(mentioned, MENTION)
        if context is not None:
            replied_author, thread_root = context
            if replied_author:
                out.setdefault(replied_author, REPLY)
            followers = self._rooms.thread_followers(room.id, thread_root) if thread_root else ()
            for user in followers:
                out.setdefault(user, THREAD_REPLY)
            if room.kind == "dm":
                for user in room.members:
                    out.setdefault(user, DM)
            else:
                for user in self._at_all(room):
                    out.setdefault(user, MESSAGE)
        return {
            user: kind
            for user, kind in out.items()
            if user != author and user in room.members and _lets(self.level(user, room), kind)
        }

    def _at_all(self, room: RoomView) -> set[str]:
        """Members whose level is ALL, by the server's setting or the room's."""
        wide = self.all_level.get("", set()) & room.members
        return wide | (self.all_level.get(room.id, set()) & room.members)

    def _edited(self, rec: Recorded, ev: MessageEdited, room: RoomView) -> None:
        msg = self._rooms.facts(room.id, ev.target_id)  # hot or cold: the columns
        if msg is None or msg.retracted:
            return
        old_users, old_room = self.mentions_of(room.id, msg.seq)
        before = set(room.members if old_room else old_users)
        after = set(room.members if ev.mention_room else ev.mentions)
        main = not msg.thread_root or msg.echo
        self._set_mentions(room.id, msg.author_id, msg.seq, ev.mentions, ev.mention_room, main)
        root = self._rooms.facts(room.id, msg.thread_root) if msg.thread_root else None
        if root is not None and ev.mentions:
            self._auto_follow(room.id, root, ev.mentions)
        for user in self._recipients(room, msg.author_id, after - before, None):
            added = Notice(msg.id, room.id, MENTION, msg.author_id, rec.seq, msg.thread_root)
            self._notify(user, added)
        still = self._recipients(room, msg.author_id, (), (msg.replied_author, msg.thread_root))
        for user in before - after:
            had = self.get(user, msg.id)
            if had is not None and had.kind == MENTION:
                if user in still:
                    had.kind = still[user]  # still a reply to them, a DM...: kept in place
                else:
                    self._unnotify(user, msg.id)

    def _set_mentions(
        self, room_id: str, author: str, seq: int, users: tuple[str, ...], room: bool, main: bool
    ) -> None:
        self._unmention(room_id, author, seq)
        if users or room:
            indexes = self.index if main else self.replies
            indexes.setdefault(room_id, MentionIndex()).add(seq, author, users, room)

    def _unmention(self, room_id: str, author: str, seq: int) -> None:
        found = self._locate(room_id, seq)
        if found is not None:
            index, users, room = found
            index.remove(seq, author, users, room)

    def _retracted(self, room: RoomView, msg_id: str) -> None:
        msg = self._rooms.facts(room.id, msg_id)  # the columns keep a retracted post's facts
        if msg is not None:
            self._unmention(room.id, msg.author_id, msg.seq)
        for user in self.by_message.pop(msg_id, set()):
            self.feeds.get(user, {}).pop(msg_id, None)

    def _left(self, user_id: str, room_id: str) -> None:
        feed = self.feeds.get(user_id, {})
        for msg_id in [m for m, n in feed.items() if n.room_id == room_id]:
            self._unnotify(user_id, msg_id)

    def _notify(self, user_id: str, notice: Notice) -> None:
        feed = self.feeds.setdefault(user_id, {})
        feed.pop(notice.message_id, None)
        feed[notice.message_id] = notice
        self.by_message.setdefault(notice.message_id, set()).add(user_id)
        if len(feed) > self.max_per_user:
            # Notices are added in stream order (projection order; a restore
            # keeps the exported order), so the first is the oldest.
            self._unnotify(user_id, next(iter(feed)))

    def _unnotify(self, user_id: str, msg_id: str) -> None:
        feed = self.feeds.get(user_id)
        if feed is not None and feed.pop(msg_id, None) is not None:
            users = self.by_message.get(msg_id)
            if users is not None:
                users.discard(user_id)
                if not users:
                    del self.by_message[msg_id]

    def _auto_follow(self, room_id: str, root: Facts, users: Any) -> None:
        opted_out = self.unfollowed.get(root.id, set())
        for user in users:
            if user not in opted_out:
                self._follow(user, room_id, root)

    def _follow(self, user_id: str, room_id: str, root: Facts) -> None:
        self._rooms.set_follower(room_id, root.id, user_id, True)
        self.follows.add(user_id, room_id, root.seq)

    def _apply_setting(self, user_id: str, rec: Recorded) -> None:
        ev = rec.envelope.event
        if isinstance(ev, ThreadFollowed | ThreadUnfollowed):
            # The room's index is resident: RoomDirectory.prepare loads it.
            root = self._rooms.facts(ev.room_id, ev.root_id)
            if isinstance(ev, ThreadUnfollowed):
                self.unfollowed.setdefault(ev.root_id, set()).add(user_id)
                self._rooms.set_follower(ev.room_id, ev.root_id, user_id, False)
                if root is not None:
                    self.follows.remove(user_id, ev.room_id, root.seq)
            elif root is not None:
                self.unfollowed.get(ev.root_id, set()).discard(user_id)
                self._follow(user_id, ev.room_id, root)
        elif isinstance(ev, LevelSet):
            self.prefs.setdefault(user_id, {})[ev.room_id] = Pref(ev.level, ev.muted)
            at_all = self.all_level.setdefault(ev.room_id, set())
            (at_all.add if ev.level == "ALL" else at_all.discard)(user_id)
        elif isinstance(ev, NotificationsDismissed):
            for msg_id in ev.message_ids:
                self._unnotify(user_id, msg_id)
        elif isinstance(ev, AllNotificationsDismissed):
            feed = self.feeds.get(user_id, {})
            for msg_id in [m for m, n in feed.items() if n.seq <= ev.up_to]:
                self._unnotify(user_id, msg_id)

    def _forget_user(self, user_id: str) -> None:
        for msg_id in list(self.feeds.get(user_id, {})):
            self._unnotify(user_id, msg_id)
        self.feeds.pop(user_id, None)
        self.prefs.pop(user_id, None)
        # Their number stays in the followers of threads in room indexes that
        # are not loaded: harmless, recipients must be members.
        self.follows.forget(user_id)
        for users in (*self.unfollowed.values(), *self.all_level.values()):
            users.discard(user_id)
        for index in (*self.index.values(), *self.replies.values()):
            index.forget(user_id)

    # --- snapshots ---------------------------------------------------------------
    def export_state(self) -> dict[str, Any]:
        return {
            "feeds": {
                u: [list(attrs.astuple(n)) for n in f.values()] for u, f in self.feeds.items()
            },
            "mentions": {r: i.export() for r, i in self.index.items() if i},
            "reply_mentions": {r: i.export() for r, i in self.replies.items() if i},
            "unfollowed": {r: sorted(u) for r, u in self.unfollowed.items()},
            "follows": self.follows.export(),
            "prefs": {
                u: {r: [p.level, p.muted] for r, p in ps.items()} for u, ps in self.prefs.items()
            },
        }

    async def restore_state(self, state: dict[str, Any]) -> None:
        self._reset()
        for user, rows in state["feeds"].items():
            for row in rows:
                self._notify(user, Notice(*row))
        self.index = {r: MentionIndex.restore(i) for r, i in state["mentions"].items()}
        self.replies = {r: MentionIndex.restore(i) for r, i in state["reply_mentions"].items()}
        self.unfollowed = {r: set(u) for r, u in state["unfollowed"].items()}
        self.follows = Follows.restore(state["follows"])
        for user, prefs in state["prefs"].items():
            for room_id, (level, muted) in prefs.items():
                self.prefs.setdefault(user, {})[room_id] = Pref(level, muted)
                if level == "ALL":
                    self.all_level.setdefault(room_id, set()).add(user)


def _lets(level: str, kind: str) -> bool:
    return level == "ALL" or (level == "MENTIONS" and kind in QUIET_KINDS)
