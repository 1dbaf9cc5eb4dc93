"""Presence goes only to people who share a room or DM, and can be switched off.

Before: every subscriber on a process received every user's presence change
(O(N^2) frames when N clients reconnect), whether they shared anything or not.
"""

from __future__ import annotations

import httpx
import pytest
import trio

import chatto.gql.live_events as live_events
import chatto.messaging.live as live_module
from tests.authflow import login_token, register
from tests.conftest import AuthEnv, ConfigFactory, start_mail_server
from tests.liveclient import live_client
from tests.test_messaging import ok

PW = "a long enough password"
LEAVE = "mutation($r: ID!) { leaveRoom(roomId: $r) }"
PRESENCE = "query($u: [ID!]!) { presence(userIds: $u) { userId status } }"


async def _user(c: httpx.AsyncClient, env: AuthEnv, login: str) -> tuple[str, str]:
    reg = await register(c, env.sink, f"{login}@example.com", login, PW)
    return reg.user["id"], await login_token(c, login, PW)


async def test_presence_reaches_only_people_who_share_a_room(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            _alice, ta = await _user(c, auth_env, "alice")
            bob, tb = await _user(c, auth_env, "bob")
            carol, tc = await _user(c, auth_env, "carol")
            # Everyone starts in the seeded rooms; Carol leaves them: she shares nothing.
            for room in ("general", "announcements"):
                await ok(c, tc, LEAVE, r=room)
            async with (
                live_client(auth_env.url, ta) as alice_live,
                live_client(auth_env.url, tc) as carol_live,
            ):
                await ok(c, tc, "mutation { setPresence(status: AWAY) }")
                await carol_live.wait_for(  # her own change reaches her
                    lambda e: e["type"] == "PRESENCE" and e["presence"] == "AWAY"
                )
                # Bob shares #general with Alice: his change reaches her, after Carol's.
                async with live_client(auth_env.url, tb):
                    await ok(c, tb, "mutation { setPresence(status: DND) }")
                    await alice_live.wait_for(
                        lambda e: e["type"] == "PRESENCE" and e["presence"] == "DND"
                    )
                # Carol's changes were published before Bob's on the same
                # relay, so had they been sent to Alice they would be here.
                assert not [e for e in alice_live.of_type("PRESENCE") if e["userId"] == carol]
                assert not [e for e in carol_live.of_type("PRESENCE") if e["userId"] == bob]
                # The query still answers (a client asks for whoever it shows).
                status = await ok(c, ta, PRESENCE, u=[carol])
                assert status["presence"][0]["status"] == "AWAY"


async def test_presence_switched_off_stores_and_sends_nothing(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(nursery, make_config, CHATTO_PRESENCE_ENABLED="false")
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            alice, ta = await _user(c, env, "alice")
            bob, tb = await _user(c, env, "bob")
            info = await ok(c, ta, "{ server { presenceEnabled } }")
            assert info["server"]["presenceEnabled"] is False
            async with live_client(env.url, ta) as alice_live, live_client(env.url, tb):
                # Each client still gets its own first event (its "subscribed" signal).
                assert alice_live.events[0] == alice_live.of_type("PRESENCE")[0]
                assert alice_live.events[0]["userId"] == alice
                assert await ok(c, tb, "mutation { setPresence(status: AWAY) }") == {
                    "setPresence": True
                }
                status = await ok(c, ta, PRESENCE, u=[alice, bob])
                assert [s["status"] for s in status["presence"]] == ["OFFLINE", "OFFLINE"]
                post = 'mutation { postMessage(roomId: "general", body: "after away") { id } }'
                posted = (await ok(c, tb, post))["postMessage"]["id"]
                await alice_live.wait_for(lambda e: e["eventId"] == posted)
                assert [e["userId"] for e in alice_live.of_type("PRESENCE")] == [alice]
    await env.server.stop()


async def test_an_idle_live_stream_still_refreshes_presence(
    nursery: trio.Nursery, make_config: ConfigFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream waits without a deadline (no cancel scope per item); the hub's ticks wake it.

    Without the ticks an idle client's presence would lapse to OFFLINE after
    the TTL although its socket is open.
    """
    monkeypatch.setattr(live_module, "TICK_SECONDS", 0.05)
    monkeypatch.setattr(live_events, "PRESENCE_REFRESH", 0.2)
    refreshed: list[str] = []
    original = live_module.LiveRelay.refresh_presence

    async def counting(self: live_module.LiveRelay, user_id: str) -> None:
        refreshed.append(user_id)
        await original(self, user_id)

    monkeypatch.setattr(live_module.LiveRelay, "refresh_presence", counting)
    env = await start_mail_server(nursery, make_config)
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=env.url, timeout=20) as c:
            alice, ta = await _user(c, env, "alice")
            async with live_client(env.url, ta) as alice_live:
                await alice_live.wait_for(lambda e: e["type"] == "PRESENCE")
                while refreshed.count(alice) < 3:  # nothing arrives on the stream meanwhile
                    await trio.sleep(0.05)
                # Only her own ONLINE (the first event and its broadcast): no other traffic.
                assert {(e["type"], e["presence"]) for e in alice_live.events} == {
                    ("PRESENCE", "ONLINE")
                }
                status = await ok(c, ta, PRESENCE, u=[alice])
                assert status["presence"][0]["status"] == "ONLINE"
    await env.server.stop()
