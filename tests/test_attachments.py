"""Attachments: sealed at rest, members only, sandboxed when active."""

from __future__ import annotations

import json

import httpx
import trio

from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv
from tests.test_auth_storage import store_bytes
from tests.test_messaging import ok

PW = "a long enough password"
MARK = "attachment-plaintext-marker-7731"
SVG = f'<svg xmlns="http://www.w3.org/2000/svg"><script>alert("{MARK}")</script></svg>'.encode()
UPLOAD = "mutation($r: ID!, $f: Upload!) { uploadAttachment(roomId: $r, file: $f) { id name contentType size url } }"


async def upload(
    c: httpx.AsyncClient,
    token: str,
    room: str,
    name: str,
    data: bytes,
    ctype: str,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    operations = json.dumps({"query": UPLOAD, "variables": {"r": room, "f": None}})
    return await c.post(
        "/api/graphql",
        data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
        files={"0": (name, data, ctype)},
        headers={**bearer(token), **(headers or {})} if token else headers or {},
    )


async def test_upload_serve_sandbox_members_only_and_removal(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            await register(c, auth_env.sink, "up@example.com", "uploader", PW)
            await register(c, auth_env.sink, "out@example.com", "outsider", PW)
            tu, to = await login_token(c, "uploader", PW), await login_token(c, "outsider", PW)
            room = (await ok(c, tu, 'mutation { createRoom(name: "files") { id } }'))["createRoom"][
                "id"
            ]
            r = await upload(c, tu, room, "evil.svg", SVG, "image/svg+xml")
            att = r.json()["data"]["uploadAttachment"]
            assert att["name"] == "evil.svg" and att["size"] == len(SVG)
            post = 'mutation($r: ID!, $a: [ID!]) { postMessage(roomId: $r, body: "see file", attachmentIds: $a) { id attachments { id url } } }'
            msg = (await ok(c, tu, post, r=room, a=[att["id"]]))["postMessage"]
            assert msg["attachments"][0]["id"] == att["id"]
            again = await c.post(
                "/api/graphql",
                json={"query": post, "variables": {"r": room, "a": [att["id"]]}},
                headers=bearer(tu),
            )
            assert again.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"  # used once
            got = await c.get(att["url"], headers=bearer(tu))
            assert got.status_code == 200 and got.content == SVG
            assert got.headers["content-security-policy"] == "sandbox"
            assert got.headers["x-content-type-options"] == "nosniff"
            assert got.headers["content-disposition"].startswith("attachment;")
            assert (await c.get(att["url"], headers=bearer(to))).status_code == 404
            assert (await c.get(att["url"])).status_code == 404
            # Over the size limit: refused before reading, or by the upload check.
            big = await upload(
                c, tu, room, "big.bin", b"x" * (12 * 1024 * 1024), "application/octet-stream"
            )
            assert big.status_code == 413, big.text[:300]
            edge = await upload(
                c, tu, room, "edge.bin", b"x" * (10 * 1024 * 1024 + 1), "application/octet-stream"
            )
            assert "larger than" in edge.json()["errors"][0]["message"]
            png = await upload(c, tu, room, "pic.png", b"\x89PNG fake", "image/png")
            png_att = png.json()["data"]["uploadAttachment"]
            got = await c.get(png_att["url"], headers=bearer(tu))
            assert got.status_code == 200 and got.content == b"\x89PNG fake"
            assert "sandbox" not in got.headers.get("content-security-policy", "")
            # Retracting the message removes its attachment.
            await ok(
                c,
                tu,
                "mutation($r: ID!, $e: ID!) { retractMessage(roomId: $r, eventId: $e) }",
                r=room,
                e=msg["id"],
            )
            assert (await c.get(att["url"], headers=bearer(tu))).status_code == 404
            await upload(c, tu, room, "keep.svg", SVG, "image/svg+xml")
    await auth_env.server.stop()
    blob = store_bytes(services.config.nats_store_dir)
    assert room.encode() in blob
    assert MARK.encode() not in blob and b"evil.svg" not in blob and b"keep.svg" not in blob


AVATAR = "mutation($f: Upload!) { setAvatar(file: $f) { id avatarUrl } }"


async def test_avatars(auth_env: AuthEnv) -> None:
    png = b"\x89PNG\r\n\x1a\n" + b"avatar-bytes-marker-5521"
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            await register(c, auth_env.sink, "pic@example.com", "pictured", PW)
            await register(c, auth_env.sink, "look@example.com", "looker", PW)
            tp, tl = await login_token(c, "pictured", PW), await login_token(c, "looker", PW)

            async def set_avatar(name: str, data: bytes, ctype: str) -> httpx.Response:
                operations = json.dumps({"query": AVATAR, "variables": {"f": None}})
                return await c.post(
                    "/api/graphql",
                    data={"operations": operations, "map": json.dumps({"0": ["variables.f"]})},
                    files={"0": (name, data, ctype)},
                    headers=bearer(tp),
                )

            bad = await set_avatar("x.svg", SVG, "image/svg+xml")
            assert bad.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            url = (await set_avatar("me.png", png, "image/png")).json()["data"]["setAvatar"][
                "avatarUrl"
            ]
            got = await c.get(url, headers=bearer(tl))
            assert got.status_code == 200 and got.content == png
            assert got.headers["content-type"] == "image/png"
            assert (await c.get(url)).status_code == 404
    services = auth_env.server.running.services
    await auth_env.server.stop()
    assert b"avatar-bytes-marker-5521" not in store_bytes(services.config.nats_store_dir)
