"""A room's messages on the write side, bounded in memory (issue #22).

``RoomActor`` needs, of a message a command targets, its author, time,
thread, reactions, attachments and the sequences of its post and edits
(what a retraction erases). ``MessageWindow`` keeps that as a ``Msg`` for
the hot window only: the ``hot_max`` messages posted or changed last (least
recently touched first out). Of every message, hot or not, it keeps compact
facts without an object per message: the id index (id -> post sequence,
``actors.rooms.idindex``), the edits and reactions aimed at each post
(``TouchIndex``: target sequence, event sequence) and the sorted sequences
of retracted posts, and each post's author (an ``array('i')`` of indexes
into the room's authors). That is what a retraction replayed against a cold
message needs without reading anything; ``load`` rebuilds a cold message's
``Msg`` from its post and reaction events when a command targets it, and a
purge reads back only the ids of the member's live posts (``read_ids``).
"""

from __future__ import annotations

import bisect
from array import array
from typing import Any

from actors.events import EntityRef, Recorded
from actors.rooms.events import MessagePosted, ReactionChanged
from actors.rooms.idindex import IdIndex, pack, unpack
from actors.rooms.reactions import stored_reaction
from actors.rooms.rules import Msg, msg_from_row, msg_row
from actors.rooms.touches import TouchIndex
from actors.store import EventStore

HOT_MESSAGES = 500
# A command may need two messages hot at once (a reply's parent and root).
MIN_HOT = 8
READ_BATCH = 1024  # posts read back at once for a purge


def new_msg(rec: Recorded) -> Msg | None:
    """The ``Msg`` of a stored post (None for any other event)."""
    ev = rec.envelope.event
    if not isinstance(ev, MessagePosted):
        return None
    return Msg(
        ev.author_id,
        rec.envelope.at_ms,
        [rec.seq],
        False,
        ev.thread_root,
        attachments=ev.attachments,
    )


def react(msg: Msg, ev: ReactionChanged) -> None:
    users = msg.reactions.setdefault(stored_reaction(ev.shortcode), set())
    (users.add if ev.added else users.discard)(ev.user_id)


class MessageWindow:
    """Hot ``Msg``s (bounded) plus compact facts of every message of a room."""

    def __init__(self, hot_max: int = HOT_MESSAGES) -> None:
        self.hot_max = max(hot_max, MIN_HOT)
        self.hot: dict[str, Msg] = {}  # least recently touched first
        self.ids = IdIndex()
        self.edits = TouchIndex()
        self.reactions = TouchIndex()
        self.retracted = array("q")  # post sequences, ascending
        self.authors: list[str] = []  # each author once, by first post
        self._author_ix: dict[str, int] = {}
        self.post_authors = array("i")  # per post, in ``ids`` order: index in authors
        self.loads = 0  # cold messages read back (statistics)

    def __len__(self) -> int:
        """Messages the room ever had (hot or not)."""
        return len(self.ids)

    # --- following events (synchronous, from ``RoomActor.apply``) -----------
    def posted(self, rec: Recorded) -> None:
        msg = new_msg(rec)
        if msg is not None:
            self.ids.add(rec.envelope.id, rec.seq)
            self.post_authors.append(self._author(msg.author_id))
            self._hold(rec.envelope.id, msg)

    def _author(self, user_id: str) -> int:
        ix = self._author_ix.get(user_id)
        if ix is None:
            ix = self._author_ix[user_id] = len(self.authors)
            self.authors.append(user_id)
        return ix

    def edited(self, target_id: str, seq: int) -> None:
        post = self.ids.get(target_id)
        if post:
            self.edits.add(post, seq)
        msg = self.hot.get(target_id)
        if msg is not None:
            msg.seqs.append(seq)
            self._hold(target_id, msg)

    def reacted(self, ev: ReactionChanged, seq: int) -> None:
        post = self.ids.get(ev.target_id)
        if post:
            self.reactions.add(post, seq)
        msg = self.hot.get(ev.target_id)
        if msg is not None:
            react(msg, ev)
            self._hold(ev.target_id, msg)

    def retract(self, target_id: str, author_id: str, at_ms: int) -> list[int]:
        """Mark retracted; the sequences that held its body until now."""
        post = self.ids.get(target_id)
        msg = self.hot.get(target_id)
        if msg is None:
            seqs = self.body_seqs(post) if post and not self.is_retracted(post) else []
            msg = Msg(author_id, at_ms, [])
        else:
            seqs = list(msg.seqs)
        if post and not self.is_retracted(post):
            bisect.insort(self.retracted, post)
        msg.retracted = True
        msg.seqs.clear()
        self._hold(target_id, msg)
        return seqs

    def _hold(self, message_id: str, msg: Msg) -> None:
        """Put ``msg`` last in the hot window; the least recently touched go."""
        self.hot.pop(message_id, None)
        self.hot[message_id] = msg
        while len(self.hot) > self.hot_max:
            del self.hot[next(iter(self.hot))]

    # --- compact facts -------------------------------------------------------
    def is_retracted(self, post: int) -> bool:
        i = bisect.bisect_left(self.retracted, post)
        return i < len(self.retracted) and self.retracted[i] == post

    def body_seqs(self, post: int) -> list[int]:
        """The post's sequence and its edits' (what a retraction erases)."""
        return [post, *(seq for _t, seq in self.edits.between(post, post))]

    def live_seqs(self, message_id: str, post: int) -> list[int] | None:
        """``body_seqs`` of a message that is not retracted; None if it is."""
        msg = self.hot.get(message_id)
        if msg is not None:
            return None if msg.retracted else list(msg.seqs)
        return None if self.is_retracted(post) else self.body_seqs(post)

    # --- reading the stream (from ``RoomActor.prepare``) ---------------------
    async def load(self, store: EventStore, room: EntityRef, message_id: str) -> None:
        """Make a cold live message hot, read back from its post and reactions.

        Only events this window already followed are read, so the ``Msg``
        is the one it would hold had it never left. A retracted message or
        one whose post is gone (erased by a retraction not followed yet)
        stays cold: the command then finds no such message, and the actor
        catches up before it answers so.
        """
        post = self.ids.get(message_id)
        if message_id in self.hot or not post or self.is_retracted(post):
            return
        touches = [seq for _t, seq in self.reactions.between(post, post)]
        stored = await store.get(room, [post, *touches])
        msg = None if stored[0] is None else new_msg(stored[0])
        if msg is None or stored[0] is None or stored[0].envelope.id != message_id:
            return
        msg.seqs = self.body_seqs(post)
        for rec in stored[1:]:
            if rec is not None and isinstance(rec.envelope.event, ReactionChanged):
                react(msg, rec.envelope.event)
        self.loads += 1
        self._hold(message_id, msg)

    def live_posts_by(self, user_id: str) -> list[int]:
        """Post sequences of the user's messages not retracted, oldest first."""
        ix = self._author_ix.get(user_id)
        if ix is None:
            return []
        seqs = self.ids.seqs
        found = (seqs[i] for i, author in enumerate(self.post_authors) if author == ix)
        return [seq for seq in found if not self.is_retracted(seq)]

    async def read_ids(self, store: EventStore, room: EntityRef, seqs: list[int]) -> dict[int, str]:
        """Post sequence -> message id of the posts at ``seqs`` still stored."""
        out = {}
        for i in range(0, len(seqs), READ_BATCH):
            for rec in await store.get(room, seqs[i : i + READ_BATCH]):
                if rec is not None and isinstance(rec.envelope.event, MessagePosted):
                    out[rec.seq] = rec.envelope.id
        return out

    # --- checkpoint ------------------------------------------------------------
    def export(self) -> dict[str, Any]:
        return {
            "hot": [[mid, msg_row(m)] for mid, m in self.hot.items()],
            "ids": self.ids.export(),
            "edits": [pack(self.edits.targets), pack(self.edits.events)],
            "reactions": [pack(self.reactions.targets), pack(self.reactions.events)],
            "retracted": pack(self.retracted),
            "authors": list(self.authors),
            "post_authors": pack(self.post_authors),
        }

    def restore(self, state: dict[str, Any]) -> None:
        self.hot = {}
        for mid, row in state["hot"]:
            self._hold(str(mid), msg_from_row(row))
        self.ids = IdIndex.restore(state["ids"])
        self.edits = _touches(state["edits"])
        self.reactions = _touches(state["reactions"])
        self.retracted = unpack(state["retracted"])
        self.authors = [str(a) for a in state["authors"]]
        self._author_ix = {a: i for i, a in enumerate(self.authors)}
        self.post_authors = unpack(state["post_authors"], "i")
        if len(self.post_authors) != len(self.ids):
            raise ValueError("the author column of a checkpoint does not fit its id index")


def _touches(row: list[str]) -> TouchIndex:
    index = TouchIndex()
    index.targets, index.events = unpack(row[0]), unpack(row[1])
    if len(index.targets) != len(index.events):
        raise ValueError("a touch index of a checkpoint has unequal columns")
    return index
