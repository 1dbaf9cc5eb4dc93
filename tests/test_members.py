"""Members: the server directory, a room's members and its bans, end to end.

Real HTTP against a real server and NATS; the 10k-user figure uses the real
directory and index in-process (registering 10k accounts over HTTP would
measure bcrypt, not search).
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

import httpx
import trio

from actors.users.directory import UserDirectory, UserRecord
from actors.users.search import CHUNK, MAX_FIRST, normalise
from tests.conftest import AuthEnv
from tests.loopstall import measure_stall
from tests.test_messaging import gql, ok
from tests.test_permissions import people

DIRECTORY = """query($s: String, $f: Int, $a: String) {
  members(search: $s, first: $f, after: $a) { users { id login displayName emails } endCursor hasMore } }"""
ROOM_MEMBERS = """query($r: ID!, $s: String, $f: Int, $a: String) { room(id: $r) {
  members(search: $s, first: $f, after: $a) { users { id login } endCursor hasMore } } }"""
BANS = """query($r: ID!) { room(id: $r) { bans { userId user { login } reason
  bannedBy { id } createdAt expiresAt } } }"""
PROFILE = "mutation($n: String!) { updateProfile(displayName: $n) { id } }"


async def directory(c: httpx.AsyncClient, token: str, **kw: Any) -> dict[str, Any]:
    return (await ok(c, token, DIRECTORY, **kw))["members"]  # type: ignore[no-any-return]


async def all_pages(c: httpx.AsyncClient, token: str, first: int, **kw: Any) -> list[str]:
    seen: list[str] = []
    after = None
    for _ in range(50):
        page = await directory(c, token, f=first, a=after, **kw)
        assert len(page["users"]) <= first
        seen += [u["login"] for u in page["users"]]
        if not page["hasMore"]:
            assert page["endCursor"] is None
            return seen
        after = page["endCursor"]
    raise AssertionError("paging never ended")


async def test_directory_search_paging_and_cursors(auth_env: AuthEnv) -> None:
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "alice", "bob", "zoe", "albert")
            ta = p["alice"][1]
            await ok(c, p["zoe"][1], PROFILE, n="Zoë Ünal")
            await ok(c, p["albert"][1], PROFILE, n="Al Bundy")
            # Pages of 2 walk everyone once, in display-name order.
            logins = await all_pages(c, ta, 2)
            assert sorted(logins) == sorted(p)
            names = {u["login"]: u["displayName"] for u in (await directory(c, ta))["users"]}
            keys = [(normalise(names[x] or x), p[x][0]) for x in logins]
            assert keys == sorted(keys)
            # Case-, accent- and Unicode-insensitive, prefix or substring, login or name.
            for needle, want in (
                ("ALI", ["alice"]),
                ("unal", ["zoe"]),
                ("ZOË", ["zoe"]),
                ("bund", ["albert"]),
                ("al", ["albert", "alice", "zoe"]),
                ("  ", sorted(p)),
            ):
                found = await all_pages(c, ta, 1, s=needle)
                assert sorted(found) == want, needle
            # Emails are never searched, and never shown to others.
            for needle in ("example.com", "alice@", "boss@example.com", "@"):
                assert (await directory(c, ta, s=needle))["users"] == [], needle
            for u in (await directory(c, ta))["users"]:
                assert (u["emails"] is None) == (u["login"] != "alice"), u
            # Forged or broken cursors and sizes: BAD_USER_INPUT, never a crash.
            forged = [
                "garbage",
                "m1.!!!",
                "m1." + base64.urlsafe_b64encode(b"[1, 2]").decode(),
                "m1." + base64.urlsafe_b64encode(b'{"a": 1}').decode(),
                "m1." + base64.urlsafe_b64encode(b"\xff\xfe").decode(),
                "m1." + "A" * 5000,
                "s:12",
            ]
            for cursor in forged:
                body = await gql(c, ta, DIRECTORY, a=cursor)
                assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", cursor
            for bad in ({"f": 0}, {"f": -5}, {"s": "x" * 101}):
                body = await gql(c, ta, DIRECTORY, **bad)
                assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT", bad
            # A well-formed cursor naming nobody is just a position.
            made_up = "m1." + base64.urlsafe_b64encode(json.dumps(["b", "x"]).encode()).decode()
            after_b = [u["login"] for u in (await directory(c, ta, a=made_up))["users"]]
            assert "alice" not in after_b and "bob" in after_b
            # Deleted accounts are not listed (nor found).
            tb = p["bob"][1]
            token = (await ok(c, tb, "mutation { requestAccountDeletion { token } }"))[
                "requestAccountDeletion"
            ]["token"]
            await ok(c, tb, "mutation($t: String!) { deleteMyAccount(token: $t) }", t=token)
            assert "bob" not in await all_pages(c, ta, 2)
            assert (await directory(c, ta, s="bob"))["users"] == []


async def test_room_members_bans_and_outsiders(auth_env: AuthEnv) -> None:
    with trio.fail_after(90):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "alice", "bob", "dave", "ally")
            (_a, ta), (bob, tb), (_d, td), (ally, tl) = p["alice"], p["bob"], p["dave"], p["ally"]
            room = (await ok(c, ta, 'mutation { createRoom(name: "team") { id } }'))["createRoom"][
                "id"
            ]
            for t in (tb, tl):
                await ok(c, t, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
            page = (await ok(c, tb, ROOM_MEMBERS, r=room))["room"]["members"]
            assert sorted(u["login"] for u in page["users"]) == ["alice", "ally", "bob"]
            assert page["hasMore"] is False and page["endCursor"] is None
            # Search stays inside the room: "al" matches albert-like users elsewhere too.
            found = (await ok(c, tb, ROOM_MEMBERS, r=room, s="AL"))["room"]["members"]["users"]
            assert sorted(u["login"] for u in found) == ["alice", "ally"]
            first = (await ok(c, tb, ROOM_MEMBERS, r=room, f=1))["room"]["members"]
            rest = (await ok(c, tb, ROOM_MEMBERS, r=room, f=5, a=first["endCursor"]))["room"][
                "members"
            ]
            assert [u["login"] for u in first["users"] + rest["users"]] == [
                "alice",
                "ally",
                "bob",
            ]
            bad = await gql(c, tb, ROOM_MEMBERS, r=room, a="m1.nope")
            assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
            # A channel's outsider is told to join; no member is named.
            outsider = await gql(c, td, ROOM_MEMBERS, r=room)
            assert outsider["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert "alice" not in json.dumps(outsider)
            # Bans: the creator sees them (room.ban-member in their room); others do not.
            await ok(
                c,
                ta,
                'mutation($r: ID!, $u: ID!) { banMember(roomId: $r, userId: $u, reason: "spam") }',
                r=room,
                u=bob,
            )
            until = "2999-01-01T00:00:00+00:00"
            await ok(
                c,
                ta,
                'mutation($r: ID!, $u: ID!, $e: String) { banMember(roomId: $r, userId: $u, reason: "cool off", expiresAt: $e) }',
                r=room,
                u=ally,
                e=until,
            )
            bans = (await ok(c, ta, BANS, r=room))["room"]["bans"]
            assert [b["userId"] for b in bans] == [ally, bob]  # newest first
            assert bans[0]["reason"] == "cool off" and bans[0]["expiresAt"] == until
            assert bans[1]["expiresAt"] is None and bans[1]["user"]["login"] == "bob"
            assert {b["bannedBy"]["id"] for b in bans} == {p["alice"][0]}
            assert bans[1]["createdAt"].startswith(time.strftime("%Y", time.gmtime()))
            # Banned: no members, no bans. A plain member: no bans.
            for t in (tb, td):
                for query in (ROOM_MEMBERS, BANS):
                    denied = await gql(c, t, query, r=room)
                    assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            await ok(c, td, "mutation($r: ID!) { joinRoom(roomId: $r) { id } }", r=room)
            denied = await gql(c, td, BANS, r=room)
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert "spam" not in json.dumps(denied)
            # Unbanned: gone from the list.
            await ok(
                c,
                ta,
                "mutation($r: ID!, $u: ID!) { unbanMember(roomId: $r, userId: $u) }",
                r=room,
                u=bob,
            )
            assert [b["userId"] for b in (await ok(c, ta, BANS, r=room))["room"]["bans"]] == [ally]

            # A DM: participants only; an outsider (owner included) gets a missing room.
            dm = (
                await ok(
                    c, ta, "mutation($u: [ID!]!) { startDM(participantIds: $u) { id } }", u=[bob]
                )
            )["startDM"]["id"]
            got = (await ok(c, tb, ROOM_MEMBERS, r=dm))["room"]["members"]["users"]
            assert sorted(u["login"] for u in got) == ["alice", "bob"]
            for t in (td, p["owner"][1]):
                for query in (ROOM_MEMBERS, BANS):
                    assert await gql(c, t, query, r=dm) == await gql(c, t, query, r="nope")
                    assert await gql(c, t, query, r=dm) == {"data": {"room": None}}


async def test_search_over_10k_users_holds_the_loop_briefly() -> None:
    """The real directory and index with 10k users: rebuild, search, page."""
    users = UserDirectory(kms=None)  # type: ignore[arg-type]  # PII already open here
    for i in range(10_000):
        uid = f"u{i:05d}"
        users.users[uid] = UserRecord(
            uid,
            login=f"user{i}",
            display_name=f"Person {i} Ünal" if i % 1000 == 0 else f"Person {i}",
            emails=[f"user{i}@example.com"],
            registered=True,
        )
    index = users.search
    with trio.fail_after(60):
        async with measure_stall("members rebuild 10k") as rebuild:
            page = await index.page(None, 1000, None)
        assert len(index) == 10_000 and len(page.users) == MAX_FIRST and page.has_more
        async with measure_stall("members search 10k") as search:
            rare = await index.page("UNAL", 100, None)
            none = await index.page("example.com", 100, None)
            many = await index.page("person 9", 100, None)
        assert sorted(u.id for u in rare.users) == [f"u{i:05d}" for i in range(0, 10_000, 1000)]
        assert none.users == [] and not none.has_more
        assert len(many.users) == 100 and many.has_more
        # Paging the whole room of 10k by 100s visits everyone exactly once.
        seen: list[str] = []
        after = None
        async with measure_stall("members page 10k") as paging:
            while True:
                pg = await index.page(None, 100, after, among=frozenset(users.users))
                seen += [u.id for u in pg.users]
                if not pg.has_more:
                    break
                after = pg.end_cursor
        assert len(seen) == len(set(seen)) == 10_000
        # A profile change moves one user; the rest of the index is untouched.
        users.users["u00005"].display_name = "Aaron First"
        users.mark_changed("u00005")  # what apply() does for a ProfileUpdated
        assert (await index.page(None, 1, None)).users[0].id == "u00005"
    # Work between checkpoints is bounded (wall time on a shared machine is
    # noise: the stalls are printed, ~4 ms rebuild and <2 ms search here).
    stats = index.statistics()
    assert stats == {"users": 10_000, "rebuilds": 1, "max_batch": CHUNK}, stats
    print(
        f"members 10k stalls: {rebuild.max_stall_ms=} {search.max_stall_ms=} {paging.max_stall_ms=}"
    )
