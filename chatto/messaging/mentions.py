"""Mentions: ``@login``, ``@room`` and ``@here`` found in a body's plaintext.

Bodies are sealed at rest, so mentions are found when the server holds the
plaintext (post and edit) and stored as user ids in the message's event
(``MessagePosted.mentions``/``mention_room``), never as text. A login that
names no one, or someone who is not a member of the room, is dropped
silently (here and again by the room actor, which knows the members for
certain): the poster's answer is the same either way, so mentions are no
oracle for accounts or membership. ``@here`` means ``@room`` (presence is
not tracked per room). ``@room`` needs ``message.mention-room`` in a
channel; without it the words stay plain text. In a DM anyone may use it
(every DM message reaches every participant anyway). A message that says
``@room`` keeps no individual mentions: it already reaches every member.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import attrs

# Same alphabet and length as logins; not preceded by a login character, so
# "ann@example.com" is an address, not a mention.
_MENTION = re.compile(r"(?<![A-Za-z0-9._@-])@([A-Za-z0-9._-]{2,32})")
_CODE = re.compile(r"```.*?```|`[^`\n]*`", re.DOTALL)
ROOM_WORDS = frozenset({"room", "here"})
# A body holds at most 10,000 bytes; past this many names the rest are ignored.
MAX_MENTIONS = 50


@attrs.frozen
class Mentions:
    """What a body mentions, as user ids (members only) and the @room flag."""

    user_ids: tuple[str, ...] = ()
    room: bool = False


def mentioned_names(body: str) -> tuple[list[str], bool]:
    """Lower-cased login candidates (in order, unique) and whether @room/@here
    appears; code spans and blocks are skipped."""
    text = _CODE.sub(" ", body)
    names: dict[str, None] = {}
    room = False
    for match in _MENTION.finditer(text):
        name = match.group(1).lower()
        # "@bob." or "@bob-" at a sentence's end: the punctuation is not his.
        trimmed = name.rstrip("._-")
        if trimmed in ROOM_WORDS:
            room = True
        elif len(names) < MAX_MENTIONS:
            names.setdefault(name, None)
            if trimmed != name and len(trimmed) >= 2:
                names.setdefault(trimmed, None)
    return list(names), room


def find_mentions(
    body: str,
    author_id: str,
    members: set[str],
    user_id_of: Callable[[str], str | None],
    may_mention_room: bool,
) -> Mentions:
    """Resolve a body's mentions against the room's members.

    ``user_id_of`` maps a login (case-insensitive) to a user id, or None.
    """
    names, room = mentioned_names(body)
    room = room and may_mention_room
    if room:
        return Mentions((), True)
    ids: dict[str, None] = {}
    for name in names:
        uid = user_id_of(name)
        if uid is not None and uid in members and uid != author_id:
            ids.setdefault(uid, None)
    return Mentions(tuple(ids), False)
