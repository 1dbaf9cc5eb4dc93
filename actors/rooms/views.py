"""The rooms read model's view objects (what the API layer reads).

``MessageView`` bodies are sealed; they are opened per read by the API layer.
"""

from __future__ import annotations

import bisect
from array import array
from collections import OrderedDict

import attrs

from actors.rooms.index import Posts
from actors.rooms.touches import TouchIndex
from actors.rooms.unread import UnreadIndex
from chatto.errors import ChattoError


@attrs.define
class MessageView:
    id: str
    room_id: str
    author_id: str
    seq: int
    at_ms: int
    body: str  # sealed; "" once retracted
    body_event_id: str
    epoch: int
    in_reply_to: str = ""
    thread_root: str = ""
    echo: bool = False
    edited_ms: int = 0
    retracted: bool = False
    reactions: dict[str, list[str]] = attrs.Factory(dict)
    reply_count: int = 0
    attachments: tuple[str, ...] = ()


@attrs.define
class AttachmentView:
    id: str
    room_id: str
    author_id: str
    name_enc: str
    content_type: str
    size: int
    epoch: int
    removed: bool = False


@attrs.define
class Timeline:
    """Stream sequences of a timeline, ascending: 8 bytes per message, no object."""

    seqs: array[int] = attrs.Factory(lambda: array("q"))

    def add(self, seq: int) -> None:
        if not self.seqs or self.seqs[-1] < seq:
            self.seqs.append(seq)  # posts arrive in stream order
        else:
            bisect.insort(self.seqs, seq)

    def remove(self, seq: int) -> bool:
        i = bisect.bisect_left(self.seqs, seq)
        if i < len(self.seqs) and self.seqs[i] == seq:
            del self.seqs[i]
            return True
        return False


class IndexNotResident(ChattoError):
    """A room's history index was read without being loaded first: a bug of
    the caller (it must ``await RoomDirectory.ensure`` the room), never the user's."""

    code = "INTERNAL"


@attrs.define
class RoomIndex:
    """What grows with a room's history: loaded on demand, evicted when clean
    (``actors/rooms/resident.py``). Seqs, hashes, interned author numbers and
    flags only: no body, no user id, no key."""

    timeline: Timeline = attrs.Factory(Timeline)
    threads: dict[str, Timeline] = attrs.Factory(dict)
    unread: UnreadIndex = attrs.Factory(UnreadIndex)
    # For reading old pages back from the stream (chatto/messaging/cold.py):
    # every edit/reaction/retraction by target seq.
    touches: TouchIndex = attrs.Factory(TouchIndex)
    # Every post of the room's history, a few bytes each (actors/rooms/index.py).
    posts: Posts = attrs.Factory(Posts)
    # Attachments of messages that have some, by the message's seq: what a
    # retraction of a cold message marks removed.
    attached: dict[int, tuple[str, ...]] = attrs.Factory(dict)
    # Who follows each thread (notifications: THREAD_REPLY), by root id: sorted
    # interned user numbers (``Authors``), written by the notification feed.
    followers: dict[str, array[int]] = attrs.Factory(dict)
    # The room's uploaded attachments by id (sealed names; read to serve a
    # download or a message's list, marked removed by a retraction or purge).
    attachments: dict[str, AttachmentView] = attrs.Factory(dict)


# A retracted view that left the hot window while its room's index was not
# resident: (seq, thread root id, on the main timeline, was a tombstone),
# applied to the index when it is next loaded (``drop_retracted``).
PendingDrop = tuple[int, str, bool, bool]


@attrs.define
class RoomView:
    id: str
    name: str
    topic: str
    kind: str
    created_by: str
    created_ms: int
    group_id: str = ""
    read_only: bool = False
    archived: bool = False
    participants: tuple[str, ...] = ()
    members: set[str] = attrs.Factory(set)
    bans: dict[str, int] = attrs.Factory(dict)
    # Who banned, why and when: user -> (by, reason, at_ms); keys as in bans.
    ban_details: dict[str, tuple[str, str, int]] = attrs.Factory(dict)
    # Pinned message ids, oldest pin first (actors/rooms/pins.py).
    pins: list[str] = attrs.Factory(list)
    # The retracted messages of the hot window (their stored post is erased) by seq.
    tombstones: dict[int, MessageView] = attrs.Factory(dict)
    # The hot window: views by seq, oldest first (issue #22; the rest is cold).
    hot: OrderedDict[int, MessageView] = attrs.Factory(OrderedDict)
    # The history index when resident (None: in the snapshot store under
    # ``index_ref``; "" there means an empty index).
    resident: RoomIndex | None = attrs.Factory(RoomIndex)
    index_ref: str = ""
    pending: list[PendingDrop] = attrs.Factory(list)
    # Interned author numbers of everyone who ever posted here (account deletion).
    authors: set[int] = attrs.Factory(set)
    last_post_seq: int = 0

    @property
    def index(self) -> RoomIndex:
        """The history index; ``IndexNotResident`` unless the room was ensured."""
        if self.resident is None:
            raise IndexNotResident(f"history index of room {self.id} read while not loaded")
        return self.resident

    @property
    def timeline(self) -> Timeline:
        return self.index.timeline

    @property
    def threads(self) -> dict[str, Timeline]:
        return self.index.threads

    @property
    def unread(self) -> UnreadIndex:
        return self.index.unread

    @property
    def touches(self) -> TouchIndex:
        return self.index.touches

    @property
    def posts(self) -> Posts:
        return self.index.posts

    @property
    def attached(self) -> dict[int, tuple[str, ...]]:
        return self.index.attached

    @property
    def attachments(self) -> dict[str, AttachmentView]:
        return self.index.attachments

    def remove_attachments(self, ids: tuple[str, ...]) -> None:
        for att_id in ids:
            att = self.index.attachments.get(att_id)
            if att is not None:
                att.removed = True


@attrs.define
class GroupView:
    id: str
    name: str
