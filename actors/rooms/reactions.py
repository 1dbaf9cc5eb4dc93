"""Reaction keys: a Unicode emoji or a shortcode in, one canonical shortcode stored.

Clients send what their emoji picker gives (``👍``, ``🎉``, ``👍🏽``) or a
shortcode (``thumbsup``, ``:tada:``, ``+1``). Every emoji becomes its GitHub
style shortcode (the ``emoji`` library's aliases: ``👍`` and ``+1`` are both
``thumbsup``; an emoji without an alias gets its CLDR name, e.g.
``melting_face``), lower case. A shortcode that names no emoji (a custom
one, ``party-parrot``) is kept as it is. So one reaction has one key,
whichever way it was sent, and a reaction added as ``👍`` is removed by
``thumbsup``. Stored events are read through ``stored_reaction`` too, so
keys written before this rule (``+1``) join their canonical form.
"""

from __future__ import annotations

import functools
import re

import emoji

from chatto.errors import InvalidInputError

MAX_SHORTCODE = 32
_SHORTCODE = re.compile(rf":?([A-Za-z0-9_+-]{{1,{MAX_SHORTCODE}}}):?")
_RULE = "a reaction is one emoji (like 👍) or a shortcode like 'thumbsup'"


@functools.cache
def _emoji_by_code() -> dict[str, str]:
    """Lower-case alias or name -> emoji, built once (a few thousand entries)."""
    table: dict[str, str] = {}
    for char, data in emoji.EMOJI_DATA.items():
        if data.get("status") != emoji.STATUS["fully_qualified"]:
            continue
        for name in (data["en"], *data.get("alias", ())):
            table.setdefault(name.strip(":").lower(), char)
    return table


def _code_of(char: str) -> str:
    return emoji.demojize(char, language="alias").strip(":").lower()


@functools.lru_cache(maxsize=4096)
def canonical_reaction(value: str) -> str:
    """The key a reaction is stored under; ``InvalidInputError`` if it is neither form."""
    text = value.strip()
    match = _SHORTCODE.fullmatch(text)
    if match is not None:
        code = match.group(1).lower()
        char = _emoji_by_code().get(code)
        return _code_of(char) if char is not None else code
    if emoji.purely_emoji(text) and emoji.emoji_count(text) == 1:
        code = _code_of(text)
        if len(code) <= 64:
            return code
    raise InvalidInputError(_RULE)


def stored_reaction(key: str) -> str:
    """A stored event's key in today's canonical form (never raises: stored is stored)."""
    try:
        return canonical_reaction(key)
    except InvalidInputError:
        return key


def reaction_emoji(key: str) -> str | None:
    """The emoji a canonical key stands for (None for a custom shortcode)."""
    return _emoji_by_code().get(key)
