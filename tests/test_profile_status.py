"""Custom status (sealed at rest, seen by others, live to the owner's clients)
and avatar removal, over real HTTP and WebSocket against a real NATS."""

from __future__ import annotations

import json

import httpx
import trio

from tests.authflow import login_token, register
from tests.conftest import AuthEnv
from tests.liveclient import live_client
from tests.test_auth_storage import store_bytes
from tests.test_messaging import gql, ok

PW = "a long enough password"
MARK = "Status-Canary-7731 at the dentist"
SET = (
    "mutation($t: String, $e: String) { setStatus(text: $t, emoji: $e) { status { text emoji } } }"
)
STATUS = "query($u: ID!) { user(id: $u) { status { text emoji } } }"


async def test_status_is_sealed_visible_and_live(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            a = await register(c, auth_env.sink, "a@example.com", "anna", PW)
            await register(c, auth_env.sink, "b@example.com", "bert", PW)
            ta, tb = await login_token(c, "anna", PW), await login_token(c, "bert", PW)
            sub = "subscription { myEvents { type userId } }"
            async with (
                live_client(auth_env.url, ta, sub) as live,
                live_client(auth_env.url, tb, sub) as peer,
            ):
                got = await ok(c, ta, SET, t=f"  {MARK} ", e="🦷")
                assert got["setStatus"]["status"] == {"text": MARK, "emoji": "🦷"}
                mine = a.user["id"]
                # Her own clients, and a member of a room she is in (#general).
                await live.wait_for(lambda e: e == {"type": "PROFILE_UPDATED", "userId": mine})
                await peer.wait_for(lambda e: e == {"type": "PROFILE_UPDATED", "userId": mine})
            seen = await ok(c, tb, STATUS, u=a.user["id"])
            assert seen["user"]["status"] == {"text": MARK, "emoji": "🦷"}
            # Encrypted at rest like a display name: never in the store in clear.
            services = auth_env.server.running.services
            assert MARK.encode() not in store_bytes(services.config.nats_store_dir)
            for text, emoji in (("", ""), ("x" * 129, ""), ("bad\x07bell", ""), ("", "a b")):
                bad = await gql(c, ta, SET, t=text, e=emoji)
                assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", (text, emoji)
            cleared = await ok(c, ta, "mutation { clearStatus { status { text } } }")
            assert cleared["clearStatus"]["status"] is None
            assert (await ok(c, tb, STATUS, u=a.user["id"]))["user"]["status"] is None
            # Unauthenticated callers get nothing.
            anon = await c.post("/api/graphql", json={"query": "mutation { clearStatus { id } }"})
            assert anon.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_deleting_the_account_shreds_the_status(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            a = await register(c, auth_env.sink, "a@example.com", "anna", PW)
            await register(c, auth_env.sink, "b@example.com", "bert", PW)
            ta, tb = await login_token(c, "anna", PW), await login_token(c, "bert", PW)
            await ok(c, ta, SET, t=MARK, e="")
            challenge = await ok(c, ta, "mutation { requestAccountDeletion { token } }")
            token = challenge["requestAccountDeletion"]["token"]
            await ok(c, ta, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=token)
            directory = auth_env.server.running.services.directory
            with trio.fail_after(20):
                while not directory.users[a.user["id"]].deleted:
                    await trio.sleep(0.05)
            record = directory.users[a.user["id"]]
            assert record.status_text == "" and record.status_emoji == ""
            assert (await ok(c, tb, STATUS, u=a.user["id"]))["user"] is None


async def test_remove_avatar(auth_env: AuthEnv) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"avatar-to-remove"
    avatar = "mutation($f: Upload!) { setAvatar(file: $f) { avatarUrl } }"
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            await register(c, auth_env.sink, "a@example.com", "anna", PW)
            ta = await login_token(c, "anna", PW)
            operations = json.dumps({"query": avatar, "variables": {"f": None}})
            r = await c.post(
                "/api/graphql",
                data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
                files={"0": ("me.png", png, "image/png")},
                headers={"authorization": f"Bearer {ta}"},
            )
            url = r.json()["data"]["setAvatar"]["avatarUrl"]
            auth = {"authorization": f"Bearer {ta}"}
            assert (await c.get(url, headers=auth)).content == png
            gone = await ok(c, ta, "mutation { removeAvatar { avatarUrl } }")
            assert gone["removeAvatar"]["avatarUrl"] is None
            assert (await c.get(url, headers=auth)).status_code == 404
            # Removing again is a no-op, not an error.
            again = await ok(c, ta, "mutation { removeAvatar { avatarUrl } }")
            assert again["removeAvatar"]["avatarUrl"] is None
