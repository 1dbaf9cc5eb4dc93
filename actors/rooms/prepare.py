"""What ``RoomActor.prepare`` reads before a decision (issue #22).

A command aimed at a message needs it hot (``MessageWindow.load``): these
are the ids ``command_targets`` names. A member's purge needs the id of every
live post of theirs: ``PurgePlan`` reads them back by sequence (the window's
author column names the posts), only those it does not know yet on a retry
after a conflict, and ``purge_targets`` turns it, with the window's compact
facts, into the live messages to retract.
"""

from __future__ import annotations

from typing import Any

import attrs

from actors.events import EntityRef
from actors.rooms.commands import EditMessage, PinMessage, PostMessage, React, RetractMessage
from actors.rooms.rules import client_key_digest
from actors.rooms.window import MessageWindow
from actors.store import EventStore
from chatto.errors import InvalidInputError


def command_targets(command: Any, client_keys: dict[str, tuple[str, int]]) -> list[str]:
    """Ids of the messages ``command``'s decision looks at."""
    if isinstance(command, EditMessage | RetractMessage | React | PinMessage):
        return [command.target_id]
    if not isinstance(command, PostMessage):
        return []
    found = [m for m in (command.in_reply_to, command.thread_root) if m]
    if command.client_key:
        try:
            digest = client_key_digest(command.author_id, command.client_key)
        except InvalidInputError:
            return found  # ``decide`` refuses the key
        if digest in client_keys:  # a retry answers with that message
            found.append(client_keys[digest][0])
    return found


@attrs.define
class PurgePlan:
    """The ids of a member's posts, by post sequence."""

    user_id: str
    ids: dict[int, str] = attrs.Factory(dict)

    @classmethod
    async def extended(
        cls,
        plan: PurgePlan | None,
        window: MessageWindow,
        store: EventStore,
        room: EntityRef,
        user_id: str,
    ) -> PurgePlan:
        """``plan`` (if it is the user's) plus the user's live posts it lacks."""
        if plan is None or plan.user_id != user_id:
            plan = cls(user_id)
        missing = [seq for seq in window.live_posts_by(user_id) if seq not in plan.ids]
        plan.ids.update(await window.read_ids(store, room, missing))
        return plan


def purge_targets(
    plan: PurgePlan | None, window: MessageWindow, user_id: str
) -> list[tuple[str, list[int]]]:
    """(id, sequences to erase) of every live message of the user, oldest first.

    From the plan and, should there be no plan or a newer post, the hot window.
    """
    posts: dict[str, int] = {}
    if plan is not None and plan.user_id == user_id:
        posts = {mid: seq for seq, mid in plan.ids.items()}
    for mid, msg in window.hot.items():
        if msg.author_id == user_id and msg.seqs:
            posts.setdefault(mid, msg.seqs[0])
    out = []
    for mid, post in sorted(posts.items(), key=lambda item: item[1]):
        seqs = window.live_seqs(mid, post)
        if seqs is not None:
            out.append((mid, seqs))
    return out
