"""Attacks from outside, over real HTTP on loopback (issue #16, items 5-12).

Each test plays the attacker against a running server on its defaults and
fails on the code before the fix it pins.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

import httpx
import trio

from actors.rooms.commands import CreateRoom
from chatto.snapshot_store import NatsSnapshotStore
from tests.authflow import Account, login_token, register, without_request_id
from tests.conftest import AuthEnv, ConfigFactory, start_mail_server
from tests.test_attachments import upload
from tests.test_auth_storage import store_bytes
from tests.test_messaging import gql, ok
from tests.test_oauth import APP, params, pkce
from tests.test_permissions import people

PW = "a long enough password"
EVIL = "https://evil.example"


def client(env: AuthEnv) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=env.url, timeout=20)


async def accounts(c: httpx.AsyncClient, env: AuthEnv, *logins: str) -> list[Account]:
    return [await register(c, env.sink, f"{n}@example.com", n, PW) for n in logins]


# --- 5. login CSRF -------------------------------------------------------------------
async def test_cross_site_form_posts_sign_nobody_in(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(nursery, make_config, CHATTO_WEBSERVER_OAUTH_REDIRECT_ORIGINS=APP)
    with trio.fail_after(60):
        async with client(env) as c:
            await accounts(c, env, "mallory")
            p = params(pkce()[1])
            creds = {**p, "login": "mallory", "password": PW}
            form = {"content-type": "application/x-www-form-urlencoded"}
            # The attack: evil.example auto-submits a form to /oauth/login.
            for headers in (
                {"origin": EVIL},
                {"origin": "null"},
                {"referer": f"{EVIL}/page"},
                {},  # a browser that sends neither header: no form token either
            ):
                r = await c.post("/oauth/login", data=creds, headers={**form, **headers})
                assert r.status_code in (400, 403), (headers, r.status_code)
                assert "chatto_session" not in r.headers.get("set-cookie", ""), headers
                c.cookies.clear()
            # Even with a form token of its own (from its own visit), another
            # browser's post carries no matching nonce cookie.
            page = await c.get("/oauth/authorize", params=p)
            token = re.search(r'name=form_token value="([^"]+)"', page.text)
            assert token
            c.cookies.clear()
            r = await c.post("/oauth/login", data={**creds, "form_token": token.group(1)})
            assert r.status_code == 400
            assert "chatto_session" not in r.headers.get("set-cookie", "")
            # Consent forms refuse cross-site posts before looking at anything.
            for path in ("/oauth/consent/approve", "/oauth/consent/deny"):
                r = await c.post(path, data={**p, "csrf": "x"}, headers={"origin": EVIL})
                assert r.status_code == 403
            # /auth/* takes JSON only: a form or text/plain post is no login.
            for ctype in ("application/x-www-form-urlencoded", "text/plain"):
                r = await c.post(
                    "/auth/login",
                    content=f'{{"login": "mallory", "password": "{PW}"}}',
                    headers={"content-type": ctype, "origin": EVIL},
                )
                assert r.status_code == 400 and "set-cookie" not in r.headers
            # Our own page still signs in (same origin, token and nonce cookie).
            page = await c.get("/oauth/authorize", params=p)
            token = re.search(r'name=form_token value="([^"]+)"', page.text)
            assert token
            r = await c.post(
                "/oauth/login",
                data={**creds, "form_token": token.group(1)},
                headers={"origin": env.url},
            )
            assert r.status_code == 303 and "chatto_session" in r.headers["set-cookie"]
    await env.server.stop()


# --- 6. registration-code oracle -----------------------------------------------------
async def _wrong_code_answers(
    c: httpx.AsyncClient, env: AuthEnv, path: str, emails: tuple[str, str], **headers: str
) -> list[tuple[int, bytes, dict[str, int]]]:
    """(status, body, storage calls) of six wrong codes for each address."""
    records = env.server.running.services.accounts.records
    out = []
    for email in emails:
        for _ in range(6):
            before = records.statistics()
            # Seven digits: wrong for every challenge, so no run can hit the code by chance.
            r = await c.post(path, json={"email": email, "code": "1234567"}, headers=headers)
            after = records.statistics()
            work = {k: after.get(k, 0) - before.get(k, 0) for k in after}
            out.append((r.status_code, without_request_id(r.content), work))
    return out


def _no_ids(doc: Any) -> Any:
    for error in doc.get("errors") or ():
        error.get("extensions", {}).pop("requestId", None)
    return doc


async def test_wrong_codes_answer_alike_for_taken_and_free_addresses(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with client(auth_env) as c:
            (alice,) = await accounts(c, auth_env, "alice")
            taken, free = "alice@example.com", "free@example.com"
            for email in (taken, free):
                assert (await c.post("/auth/register", json={"email": email})).status_code == 200
            answers = await _wrong_code_answers(
                c, auth_env, "/auth/register/verify-code", (taken, free)
            )
            assert answers[:6] == answers[6:]
            assert b"5 attempts" not in answers[0][1] and answers[0][0] == 400
            assert b"too many" in answers[5][1]
            # The same when a signed-in user adds someone else's address.
            bob = (await accounts(c, auth_env, "bob"))[0]
            auth = {"cookie": f"chatto_session={bob.cookie}", "x-csrf-token": bob.csrf}
            for email in (alice.email, "other@example.com"):
                r = await c.post(
                    "/auth/verify-email/request-code", json={"email": email}, headers=auth
                )
                assert r.status_code == 200
            answers = await _wrong_code_answers(
                c,
                auth_env,
                "/auth/verify-email/confirm-code",
                (alice.email, "other@example.com"),
                **auth,
            )
            assert answers[:6] == answers[6:]


# --- 11. password rules ---------------------------------------------------------------
async def test_password_minimum_counts_characters_not_bytes(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with client(auth_env) as c:
            (acct,) = await accounts(c, auth_env, "pat")
            auth = {"cookie": f"chatto_session={acct.cookie}", "x-csrf-token": acct.csrf}
            short = (
                "éééé",  # 4 characters, 8 bytes
                "\U0001f600\U0001f600",  # 2 characters, 8 bytes
                "e\u0301" * 4,  # 8 code points, 4 characters once composed (NFC)
                "é" * 7,
            )
            for bad in (*short, "x" * 129, "é" * 65):
                r = await c.post(
                    "/auth/change-password",
                    json={"currentPassword": PW, "newPassword": bad},
                    headers=auth,
                )
                assert r.status_code == 400, bad
                message = r.json()["errors"][0]["message"]
                assert "8 characters" in message and "128 bytes" in message
            r = await c.post(
                "/auth/change-password",
                json={"currentPassword": PW, "newPassword": "é" * 8},
                headers=auth,
            )
            assert r.status_code == 200, r.text


# --- 10. X-Forwarded-For in several lines ---------------------------------------------
async def test_a_client_cannot_pick_its_address_with_its_own_forwarded_line(
    nursery: trio.Nursery, make_config: ConfigFactory
) -> None:
    env = await start_mail_server(
        nursery,
        make_config,
        CHATTO_LIMITS_LOGIN_PER_IP="5/300",
        CHATTO_LIMITS_LOGIN_PER_ACCOUNT="100/300",
        CHATTO_WEBSERVER_TRUSTED_PROXIES="127.0.0.1/32",
    )
    with trio.fail_after(60):
        async with client(env) as c:
            statuses = []
            for i in range(6):
                # Line 1: what the attacker sent (a new address each time);
                # line 2: what the trusted proxy (HAProxy) appended, the real one.
                headers = [
                    ("x-forwarded-for", f"192.0.2.{i}"),
                    ("x-forwarded-for", "203.0.113.7"),
                ]
                r = await c.post(
                    "/auth/login",
                    json={"login": f"guess{i}", "password": "wrong password"},
                    headers=headers,
                )
                statuses.append(r.status_code)
            assert statuses == [401] * 5 + [429]
    await env.server.stop()


# --- 9. uploader-chosen content types ------------------------------------------------
SCRIPTED = b'<x:html xmlns:x="http://www.w3.org/1999/xhtml"><x:script>alert(1)</x:script></x:html>'
ACTIVE = (
    "application/rss+xml",
    "application/atom+xml",
    "application/x-anything+xml",
    "application/mathml+xml",
    "text/xsl",
    "application/vnd.wap.xhtml+xml",
    "image/svg+xml",
    "text/html",
    "application/octet-stream",
    "application/x-shockwave-flash",
    "Text/HTML",
)


async def test_only_passive_types_are_served_inline(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with client(auth_env) as c:
            await accounts(c, auth_env, "uploader")
            token = await login_token(c, "uploader", PW)
            room = (await ok(c, token, 'mutation { createRoom(name: "f") { id } }'))["createRoom"]
            for ctype in ACTIVE:
                r = await upload(c, token, room["id"], "f", SCRIPTED, ctype)
                got = await c.get(
                    r.json()["data"]["uploadAttachment"]["url"],
                    headers={"authorization": f"Bearer {token}"},
                )
                assert got.status_code == 200 and got.content == SCRIPTED, ctype
                assert got.headers["content-disposition"].startswith("attachment;"), ctype
                assert got.headers["content-security-policy"] == "sandbox", ctype
                assert got.headers["x-content-type-options"] == "nosniff"
            for ctype in ("image/png", "audio/ogg", "video/mp4", "application/pdf", "text/plain"):
                r = await upload(c, token, room["id"], "f", b"data", ctype)
                got = await c.get(
                    r.json()["data"]["uploadAttachment"]["url"],
                    headers={"authorization": f"Bearer {token}"},
                )
                assert got.headers["content-disposition"].startswith("inline;"), ctype
                assert got.headers["content-type"] == ctype
                assert got.headers["x-content-type-options"] == "nosniff"


# --- 8. authority over users of a higher rank ----------------------------------------
ASSIGN = "mutation($r: ID!, $u: ID!) { assignRole(roleId: $r, userId: $u) }"
REVOKE = "mutation($r: ID!, $u: ID!) { revokeRole(roleId: $r, userId: $u) }"
DELETE = "mutation($u: ID!) { deleteUser(userId: $u) }"
SETP = (
    "mutation($s: String!, $p: String!) "
    '{ setPermission(subject: $s, scope: "server", permission: $p, effect: DENY) }'
)


async def test_nobody_acts_on_a_peer_or_a_superior(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with client(auth_env) as c:
            p = await people(auth_env, c, "owner", "adm", "adm2", "mod", "usr")
            (owner, to), (adm, ta) = p["owner"], p["adm"]
            for name, role in (("adm", "admin"), ("adm2", "admin"), ("mod", "moderator")):
                await ok(c, to, ASSIGN, r=role, u=p[name][0])

            async def refused(query: str, **variables: str) -> None:
                body = await gql(c, ta, query, **variables)
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (query, body)

            # The attack from the issue: an admin deletes the owner.
            await refused(DELETE, u=owner)
            await refused(DELETE, u=p["adm2"][0])  # a peer
            await refused(ASSIGN, r="admin", u=p["usr"][0])  # only owners make admins
            await refused(REVOKE, r="admin", u=p["adm2"][0])
            await refused(REVOKE, r="moderator", u=p["adm2"][0])  # aimed at a peer
            for subject in (f"user:{owner}", f"user:{p['adm2'][0]}", "role:admin", "role:owner"):
                await refused(SETP, s=subject, p="room.create")
            me = await ok(c, to, "{ viewer { id isOwner } }")
            assert me["viewer"] == {"id": owner, "isOwner": True}
            # Downwards it works.
            await ok(c, ta, REVOKE, r="moderator", u=p["mod"][0])
            await ok(c, ta, SETP, s="role:moderator", p="room.create")
            await ok(c, ta, SETP, s=f"user:{p['usr'][0]}", p="room.create")
            await ok(c, ta, DELETE, u=p["usr"][0])
            await ok(c, to, DELETE, u=adm)
            # The last owner cannot go, not even by their own hand.
            token = (await ok(c, to, "mutation { requestAccountDeletion { token } }"))[
                "requestAccountDeletion"
            ]["token"]
            body = await gql(c, to, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=token)
            assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert (await ok(c, to, "{ viewer { id } }"))["viewer"]["id"] == owner


# --- 12. the bcrypt hash of a deleted user --------------------------------------------
async def test_deletion_erases_every_password_hash_from_the_store(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    directory = services.directory
    with trio.fail_after(60):
        async with client(auth_env) as c:
            gone, stays = await accounts(c, auth_env, "gone", "stays")
            hashes = [directory.users[gone.user["id"]].password_hash]
            token = await login_token(c, "gone", PW)
            auth = {"authorization": f"Bearer {token}"}
            r = await c.post(
                "/auth/change-password",
                json={"currentPassword": PW, "newPassword": "another long password"},
                headers=auth,
            )
            assert r.status_code == 200, r.text
            token = r.json()["token"]
            hashes.append(directory.users[gone.user["id"]].password_hash)
            kept = directory.users[stays.user["id"]].password_hash
            # A snapshot holding the hashes, replaced after the deletion (at
            # the graceful stop): its chunks must be overwritten too.
            assert await services.projector.write_snapshot()
            snapshot = await NatsSnapshotStore(services.bridge).load()
            assert snapshot is not None  # compressed: the scan looks for its bytes
            assert snapshot[-512:] in store_bytes(services.config.nats_store_dir)
            challenge = await ok(c, token, "mutation { requestAccountDeletion { token } }")
            t = challenge["requestAccountDeletion"]["token"]
            await ok(c, token, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=t)
            while services.deleter.completed < 1:
                await trio.sleep(0.05)
    await auth_env.server.stop()
    blob = store_bytes(services.config.nats_store_dir)
    assert kept.removeprefix("$chatto1$").encode() in blob  # the scan sees hashes
    for old in hashes:
        assert old.removeprefix("$chatto1$").encode() not in blob
    assert snapshot[-512:] not in blob  # the replaced snapshot was overwritten


# --- 7. DM ids and what outsiders learn about them ------------------------------------
def unkeyed_dm_id(*people: str) -> str:
    """How DM ids used to be made: anyone can compute this."""
    digest = hashlib.sha256("\x00".join(sorted(people)).encode()).digest()[:16]
    return "dm-" + base64.b32encode(digest).decode().rstrip("=").lower()


ROOM_OPS = (
    "mutation($r: ID!) { leaveRoom(roomId: $r) }",
    'mutation($r: ID!) { updateRoom(roomId: $r, name: "x") { id } }',
    "mutation($r: ID!) { archiveRoom(roomId: $r, archived: true) { id } }",
    "mutation($r: ID!) { joinRoom(roomId: $r) { id } }",
    'mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u, reason: "r") }',
    "mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }",
    'mutation($r: ID!) { postMessage(roomId: $r, body: "hi") { id } }',
    'mutation($r: ID!) { editMessage(roomId: $r, eventId: "e", body: "b") { id } }',
    'mutation($r: ID!) { retractMessage(roomId: $r, eventId: "e") }',
    'mutation($r: ID!) { react(roomId: $r, eventId: "e", shortcode: "+1") { id } }',
    'mutation($r: ID!) { markRead(roomId: $r, eventId: "e") }',
    "mutation($r: ID!) { setTyping(roomId: $r, typing: true) }",
    "query($r: ID!) { viewerPermissions(roomId: $r) }",
    "query($r: ID!, $u: ID!) "
    '{ explainPermission(userId: $u, permission: "room.manage", roomId: $r) { allowed reason } }',
    "query($r: ID!) { room(id: $r) { id } }",
)


async def test_outsiders_cannot_tell_a_dm_from_no_room(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(90):
        async with client(auth_env) as c:
            p = await people(auth_env, c, "owner", "adm", "alice", "bob", "eve")
            await ok(c, p["owner"][1], ASSIGN, r="admin", u=p["adm"][0])
            (alice, ta), (bob, tb), (eve, te) = p["alice"], p["bob"], p["eve"]
            start = "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }"
            dm = (await ok(c, ta, start, u=[bob]))["startDM"]["id"]
            assert dm != unkeyed_dm_id(alice, bob)  # keyed: nobody else can compute it
            await ok(c, ta, 'mutation($r: ID!) { postMessage(roomId: $r, body: "x") { id } }', r=dm)
            absent = unkeyed_dm_id(alice, eve)  # what an attacker would probe
            for name in ("owner", "adm", "eve"):
                token = p[name][1]
                for op in ROOM_OPS:
                    found = _no_ids(await gql(c, token, op, r=dm, u=alice))
                    none = _no_ids(await gql(c, token, op, r=absent, u=alice))
                    assert found == none, (name, op, found, none)
                uploads = []
                for room in (dm, absent):
                    r = await upload(c, token, room, "f.txt", b"x", "text/plain")
                    uploads.append((r.status_code, without_request_id(r.content)))
                assert uploads[0] == uploads[1], name
            # Nothing an outsider did reached the DM.
            q = "query($r: ID!) { room(id: $r) { memberCount archived } }"
            assert (await ok(c, ta, q, r=dm))["room"] == {"memberCount": 2, "archived": False}
            # A DM that already exists under its old unkeyed id keeps it.
            legacy = unkeyed_dm_id(bob, eve)
            cmd = CreateRoom("", "", "dm", bob, participants=tuple(sorted((bob, eve))))
            done = await services.actors.ask("room", legacy, cmd)
            await services.projector.wait_for(done.last_seq)
            assert (await ok(c, te, start, u=[bob]))["startDM"]["id"] == legacy
            assert (await ok(c, tb, "{ myRooms { id } }"))["myRooms"].count({"id": legacy}) == 1
