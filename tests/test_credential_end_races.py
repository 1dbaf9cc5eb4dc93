"""Races: a credential or room access ends while events are queued for the socket.

The stream is consumed in-process, and only after the end happened, so the
end meets events the hub had already queued for it (over a real socket the
window is too short to hit on purpose). Everything else is real: HTTP
requests, the projector, the hub, core NATS.
"""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import httpx
import pytest
import trio

from tests.authflow import login_token, register
from tests.conftest import AuthEnv
from tests.liveclient import MY_EVENTS, live_client
from tests.test_credential_ends import (
    PW,
    TYPING,
    _body,
    after,
    lose_room,
    post,
    room_with_victim,
    two_users,
)
from tests.test_messaging import ok


async def open_stream(env: AuthEnv, token: str, track: bool) -> Any:
    """An in-process ``myEvents`` stream, read only when the test says so."""
    from chatto.gql.context import RequestContext
    from chatto.gql.execute import prepare
    from chatto.gql.fanout import subscribe_shared
    from chatto.gql.schema import build_schema

    services = env.server.running.services
    auth = await services.authn.from_headers(f"Bearer {token}", None)
    assert auth.user is not None
    ctx = RequestContext(services=services, auth=auth, transport="ws")
    if track:
        from chatto.auth.ends import Credential

        ctx.credential = Credential(auth.key, auth.user.id, auth.generation, auth.expires_ms)
    schema = build_schema()
    op = await prepare(schema, {"query": MY_EVENTS}, services.config.graphql)
    stream = await subscribe_shared(schema, ctx, op)
    assert not isinstance(stream, list), stream
    return ctx, stream


def event_of(text: str) -> dict[str, Any]:
    return json.loads(text)["data"]["myEvents"]  # type: ignore[no-any-return]


async def test_race_events_queued_before_a_ban_are_withheld(auth_env: AuthEnv) -> None:
    """The ban, typing and a post are queued before the stream consumes the ban."""
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, victim, tb = await two_users(auth_env.sink, c)
            await register(c, auth_env.sink, "witness@example.com", "witness", PW)
            tc = await login_token(c, "witness", PW)
            room = await room_with_victim(c, ta, tb)
            await ok(c, tc, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
            _ctx, stream = await open_stream(auth_env, tb, track=False)
            async with aclosing(stream), live_client(auth_env.url, tc) as witness:
                assert event_of(await anext(stream))["type"] == "PRESENCE"
                # From here on the victim's stream is not read: everything queues.
                await lose_room(c, "ban", ta, tb, room, victim.user["id"])
                await ok(c, ta, TYPING, r=room)
                # The hub offered the typing signal to the witness and the victim at once.
                await witness.wait_for(lambda e: e["type"] == "TYPING")
                await post(c, ta, "secret", room)
                await post(c, ta, "marker")
                events = []
                async for text in stream:
                    events.append(event_of(text))
                    if _body(events[-1]) == "marker":
                        break
            assert after(events, "MEMBER_BANNED", room) == [], events


async def test_race_events_queued_before_a_revocation_are_withheld(auth_env: AuthEnv) -> None:
    """A post is queued for the socket, then its token is revoked: only the farewell comes."""
    from chatto.gql.live_events import SessionEnded

    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            ta, _victim, tb = await two_users(auth_env.sink, c)
            ctx, stream = await open_stream(auth_env, tb, track=True)
            credentials = auth_env.server.running.services.credentials
            async with aclosing(stream):
                with credentials.track(ctx.credential):
                    assert event_of(await anext(stream))["type"] == "PRESENCE"
                    await post(c, ta, "queued")  # projected (so queued) before this answers
                    r = await c.post("/auth/revoke-token", json={"token": tb})
                    assert r.status_code == 200
                    events = []
                    with pytest.raises(SessionEnded):
                        async for text in stream:
                            events.append(event_of(text))
            assert events == [{**events[0], "type": "SESSION_TERMINATED"}], events
            assert events[0]["message"] is None
