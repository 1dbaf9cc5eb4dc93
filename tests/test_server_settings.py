"""Server settings (name, description, logo) and the sidebar layout (room groups
renamed, deleted, ordered; rooms ordered), over real HTTP and WebSocket.

Attacks: a member calling each server.manage mutation, logo uploads of SVG
and of HTML declared as PNG.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio

from tests.authflow import login_token, register
from tests.conftest import OWNER_EMAIL, AuthEnv
from tests.liveclient import live_client
from tests.test_messaging import gql, ok

PW = "a long enough password"
PNG = b"\x89PNG\r\n\x1a\n" + b"logo-bytes"
LOGO = "mutation($f: Upload!) { setServerLogo(file: $f) { logoUrl } }"
GROUPS = "{ roomGroups { id name position rooms { id name position group { id } } } }"
SERVER = "{ server { name description logoUrl } }"


async def owner_and_member(env: AuthEnv, c: httpx.AsyncClient) -> tuple[str, str]:
    await register(c, env.sink, OWNER_EMAIL, "boss", PW)
    await register(c, env.sink, "member@example.com", "member", PW)
    return await login_token(c, "boss", PW), await login_token(c, "member", PW)


async def upload_logo(
    c: httpx.AsyncClient, token: str, name: str, data: bytes, ctype: str
) -> dict[str, Any]:
    operations = json.dumps({"query": LOGO, "variables": {"f": None}})
    r = await c.post(
        "/api/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
        files={"0": (name, data, ctype)},
        headers={"authorization": f"Bearer {token}"},
    )
    return r.json()  # type: ignore[no-any-return]


async def test_settings_and_logo_are_public_and_live(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            tb, tm = await owner_and_member(auth_env, c)
            async with live_client(auth_env.url, tm, "subscription { myEvents { type } }") as live:
                update = 'mutation { updateServerSettings(name: "Lounge", description: "hi") { name description } }'
                done = await ok(c, tb, update)
                assert done["updateServerSettings"] == {"name": "Lounge", "description": "hi"}
                await live.wait_for(lambda e: e["type"] == "SERVER_UPDATED")
                # Public: no credentials needed, and it overrides core.server_name.
                public = await c.post("/api/graphql", json={"query": SERVER})
                assert public.json()["data"]["server"]["name"] == "Lounge"
                assert (await c.get("/api/server")).json()["description"] == "hi"

                url = (await upload_logo(c, tb, "l.png", PNG, "image/png"))["data"]
                url = url["setServerLogo"]["logoUrl"]
                got = await c.get(url)  # anyone, signed in or not
                assert got.status_code == 200 and got.content == PNG
                assert got.headers["content-type"] == "image/png"
                assert got.headers["x-content-type-options"] == "nosniff"
                assert got.headers["content-security-policy"] == "sandbox"
                live.events.clear()
                await ok(c, tb, "mutation { removeServerLogo { logoUrl } }")
                await live.wait_for(lambda e: e["type"] == "SERVER_UPDATED")
            public = await c.post("/api/graphql", json={"query": SERVER})
            assert public.json()["data"]["server"]["logoUrl"] is None
            assert (await c.get(url)).status_code == 404


async def test_logo_refuses_svg_html_and_members(auth_env: AuthEnv) -> None:
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>'
    html = b"<html><script>alert(document.cookie)</script></html>"
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            tb, tm = await owner_and_member(auth_env, c)
            for name, data, ctype in (
                ("x.svg", svg, "image/svg+xml"),
                ("x.png", html, "image/png"),  # HTML declared as PNG
                ("x.png", svg, "image/png"),
                ("x.html", html, "text/html"),
            ):
                bad = await upload_logo(c, tb, name, data, ctype)
                assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", name
            assert (await ok(c, tb, SERVER))["server"]["logoUrl"] is None
            assert (await c.get("/assets/server-logo")).status_code == 404
            denied = await upload_logo(c, tm, "l.png", PNG, "image/png")
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            for mutation in (
                'mutation { updateServerSettings(name: "Mine") { name } }',
                "mutation { removeServerLogo { name } }",
                'mutation { renameRoomGroup(groupId: "g", name: "x") { id } }',
                'mutation { deleteRoomGroup(groupId: "g") }',
                "mutation { reorderRoomGroups(ids: []) { id } }",
                'mutation { reorderRooms(roomIds: ["general"]) { id } }',
            ):
                body = await gql(c, tm, mutation)
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", mutation
            assert (await ok(c, tm, SERVER))["server"]["name"] == "Chatto"


async def test_groups_rename_delete_and_order(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            tb, tm = await owner_and_member(auth_env, c)
            make = "mutation($n: String!) { createRoomGroup(name: $n) { id } }"
            a = (await ok(c, tb, make, n="Alpha"))["createRoomGroup"]["id"]
            b = (await ok(c, tb, make, n="Beta"))["createRoomGroup"]["id"]
            room = "mutation($n: String!, $g: ID) { createRoom(name: $n, groupId: $g) { id } }"
            r1 = (await ok(c, tb, room, n="one", g=a))["createRoom"]["id"]
            r2 = (await ok(c, tb, room, n="two", g=a))["createRoom"]["id"]
            async with live_client(auth_env.url, tm, "subscription { myEvents { type } }") as live:
                order = "mutation($i: [ID!]!) { reorderRoomGroups(ids: $i) { id position } }"
                got = (await ok(c, tb, order, i=[b, a]))["reorderRoomGroups"]
                assert [g["id"] for g in got] == [b, a] and got[0]["position"] == 0
                await live.wait_for(lambda e: e["type"] == "GROUPS_UPDATED")
                rooms = "mutation($g: ID, $r: [ID!]!) { reorderRooms(groupId: $g, roomIds: $r) { id position } }"
                got = (await ok(c, tb, rooms, g=a, r=[r2, r1]))["reorderRooms"]
                assert [x["id"] for x in got] == [r2, r1]
                # The member's sidebar query sees the same order.
                groups = (await ok(c, tm, GROUPS))["roomGroups"]
                assert [g["name"] for g in groups] == ["Beta", "Alpha"]
                assert [(x["id"], x["position"]) for x in groups[1]["rooms"]] == [(r2, 0), (r1, 1)]
                # A room outside the group cannot be ordered into it.
                wrong = await gql(c, tb, rooms, g=b, r=[r1])
                assert wrong["errors"][0]["extensions"]["code"] == "NOT_FOUND"
                rename = (
                    'mutation($g: ID!) { renameRoomGroup(groupId: $g, name: " Gamma ") { name } }'
                )
                assert (await ok(c, tb, rename, g=a))["renameRoomGroup"]["name"] == "Gamma"
                live.events.clear()
                await ok(c, tb, "mutation($g: ID!) { deleteRoomGroup(groupId: $g) }", g=a)
                await live.wait_for(lambda e: e["type"] == "GROUPS_UPDATED")
            groups = (await ok(c, tm, GROUPS))["roomGroups"]
            assert [g["name"] for g in groups] == ["Beta"]
            # Its rooms are ungrouped now, and the deleted group is gone for good.
            for rid in (r1, r2):
                got = await ok(c, tm, "query($r: ID!) { room(id: $r) { group { id } } }", r=rid)
                assert got["room"]["group"] is None
            again = await gql(c, tb, "mutation($g: ID!) { deleteRoomGroup(groupId: $g) }", g=a)
            assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"
            moved = 'mutation($r: ID!, $g: ID) { updateRoom(roomId: $r, name: "one", groupId: $g) { id } }'
            gone = await gql(c, tb, moved, r=r1, g=a)
            assert gone["errors"][0]["extensions"]["code"] == "NOT_FOUND"
