"""Reactions as clients send them (emoji or shortcode), and who may retract what.

A reaction has one canonical key whichever form it came in; the schema's
``@selfOr(permission: "message.manage")`` on retractMessage is what the
server enforces: own messages always, others' with the permission (a
channel's creator holds it unless denied), never inside a DM.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest
import trio

from actors.rooms.reactions import canonical_reaction, reaction_emoji
from chatto.errors import InvalidInputError
from chatto.gql.schema import build_schema, required_permission
from tests.conftest import AuthEnv
from tests.test_messaging import POST, gql, ok
from tests.test_permissions import people

REACT = "mutation($r: ID!, $e: ID!, $s: String!, $a: Boolean) { react(roomId: $r, eventId: $e, shortcode: $s, add: $a) { reactions { shortcode emoji count mine } } }"
RETRACT = "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }"
SETP = 'mutation($s: String!, $sc: String!) { setPermission(subject: $s, scope: $sc, permission: "message.manage", effect: DENY) }'


@pytest.mark.parametrize(
    ("given", "key"),
    [
        ("👍", "thumbsup"),
        ("+1", "thumbsup"),
        ("thumbs_up", "thumbsup"),
        (":THUMBSUP:", "thumbsup"),
        ("🎉", "tada"),
        ("❤", "heart"),  # without the variation selector
        ("👍🏽", "thumbs_up_medium_skin_tone"),
        ("party-parrot", "party-parrot"),  # custom: kept
    ],
)
def test_one_canonical_key_for_every_form(given: str, key: str) -> None:
    assert canonical_reaction(given) == key


@pytest.mark.parametrize("bad", ["", "👍👍", "👍 x", "hello world", "a" * 33, "<b>"])
def test_anything_else_is_refused(bad: str) -> None:
    with pytest.raises(InvalidInputError):
        canonical_reaction(bad)


def test_keys_map_back_to_their_emoji() -> None:
    assert reaction_emoji("thumbsup") == "👍"
    assert reaction_emoji("party-parrot") is None


async def _react(c: httpx.AsyncClient, token: str, msg: str, s: str, add: bool = True) -> Any:
    data = await ok(c, token, REACT, r="general", e=msg, s=s, a=add)
    return data["react"]["reactions"]


async def test_emoji_and_shortcodes_add_and_remove_the_same_reaction(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "ann", "ben")
            (_a, ta), (_b, tb) = p["ann"], p["ben"]
            msg = (await ok(c, ta, POST, r="general", b="react to me"))["postMessage"]["id"]
            thumbs = {"shortcode": "thumbsup", "emoji": "👍", "count": 1, "mine": True}
            assert await _react(c, ta, msg, "👍") == [thumbs]
            assert await _react(c, ta, msg, "+1") == [thumbs]  # the same reaction: no-op
            await _react(c, tb, msg, ":tada:")
            both = await _react(c, ta, msg, "🎉")
            assert {"shortcode": "tada", "emoji": "🎉", "count": 2, "mine": True} in both
            assert await _react(c, ta, msg, "thumbsup", add=False) == [
                {"shortcode": "tada", "emoji": "🎉", "count": 2, "mine": True}
            ]
            bad = await gql(c, ta, REACT, r="general", e=msg, s="👍👍", a=True)
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            assert "emoji" in bad["errors"][0]["message"]


async def test_retraction_rules_are_the_schemas(auth_env: AuthEnv) -> None:
    field = build_schema().mutation_type.fields["retractMessage"]  # type: ignore[union-attr]
    assert required_permission(field, "selfOr") == "message.manage"
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "cara", "dan")
            (_o, to), (cara, tc), (dan, td) = p["owner"], p["cara"], p["dan"]
            room = (await ok(c, tc, 'mutation { createRoom(name: "caras") { id } }'))["createRoom"][
                "id"
            ]
            await ok(c, td, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)

            async def post(token: str, r: str = room) -> str:
                data = await ok(c, token, POST, r=r, b="words")
                return str(data["postMessage"]["id"])

            def code(body: dict[str, Any]) -> str | None:
                return body["errors"][0]["extensions"]["code"] if body.get("errors") else None

            # Own messages: always.
            assert code(await gql(c, td, RETRACT, r=room, e=await post(td))) is None
            # Someone else's: not for a plain member ...
            assert code(await gql(c, td, RETRACT, r=room, e=await post(tc))) == "FORBIDDEN"
            # ... but for the channel's creator ...
            assert code(await gql(c, tc, RETRACT, r=room, e=await post(td))) is None
            # ... unless an owner denies it to her in that room.
            await ok(c, to, SETP, s=f"user:{cara}", sc=f"room:{room}")
            assert code(await gql(c, tc, RETRACT, r=room, e=await post(td))) == "FORBIDDEN"
            # Never inside a DM, not even for an owner.
            dm = (
                await ok(
                    c, to, "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }", p=[dan]
                )
            )["startDM"]["id"]
            assert code(await gql(c, to, RETRACT, r=dm, e=await post(td, dm))) == "FORBIDDEN"
