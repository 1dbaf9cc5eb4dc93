"""A room's history index as plain JSON values (``RoomIndex`` <-> dict).

Sequence arrays are base64 of their bytes (no copy of history as numbers);
the same row is the content of an index object (``actors/rooms/resident.py``)
and of a snapshot's inline index (a model without a snapshot store).
"""

from __future__ import annotations

import base64
import sys
from array import array
from typing import Any

from actors.rooms.index import Authors, Posts
from actors.rooms.touches import TouchIndex
from actors.rooms.unread import UnreadIndex
from actors.rooms.views import AttachmentView, RoomIndex, Timeline


def _b64(seqs: array[int]) -> str:  # any array: its machine bytes
    return base64.b64encode(seqs.tobytes()).decode()


def _timeline(text: str) -> Timeline:
    seqs = array("q")
    seqs.frombytes(base64.b64decode(text))
    return Timeline(seqs)


def index_row(index: RoomIndex, authors: Authors) -> dict[str, Any]:
    """The index's state in fresh containers; authors by their number (no user id)."""
    unread = index.unread.export()
    unread["by_author"] = {str(authors.find(a)): s for a, s in unread["by_author"].items()}
    return {
        "timeline": _b64(index.timeline.seqs),
        "threads": {root: _b64(t.seqs) for root, t in index.threads.items()},
        "unread": unread,
        "touches": index.touches.export(),
        "posts": index.posts.export(),
        "attached": {str(seq): list(a) for seq, a in index.attached.items()},
        "followers": {root: _b64(users) for root, users in index.followers.items() if users},
        # Authors by number (no user id); names are sealed under the author's key.
        "attachments": {
            i: [authors.find(a.author_id), a.name_enc, a.content_type, a.size, a.epoch, a.removed]
            for i, a in index.attachments.items()
        },
    }


def index_from_row(row: dict[str, Any], authors: Authors, room_id: str) -> RoomIndex:
    unread = dict(row["unread"])
    unread["by_author"] = {authors.ids[int(n)]: s for n, s in unread["by_author"].items()}
    return RoomIndex(
        timeline=_timeline(row["timeline"]),
        threads={sys.intern(root): _timeline(t) for root, t in row["threads"].items()},
        unread=UnreadIndex.restore(unread),
        touches=TouchIndex.restore(row["touches"]),
        posts=Posts.restore(row["posts"]),
        attached={int(seq): tuple(a) for seq, a in row["attached"].items()},
        followers={sys.intern(root): _users(u) for root, u in row["followers"].items()},
        attachments={
            i: AttachmentView(i, room_id, authors.ids[n], name, ctype, size, epoch, removed)
            for i, (n, name, ctype, size, epoch, removed) in row["attachments"].items()
        },
    )


def _users(text: str) -> array[int]:
    users = array("i")
    users.frombytes(base64.b64decode(text))
    return users
