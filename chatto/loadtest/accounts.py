"""Virtual users and their rooms, through the public API only.

A user ``lt<i>`` is registered with the emailed code (our SMTP sink reads
it), or reused: a token remembered in the state file is checked first,
then a login is tried, and registration is the last resort. Rooms are
``lt-room-<i>``, created by the first user and reused by name.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import attrs
import httpx
import trio

from chatto.loadtest.smtp_sink import SmtpSink

CODE_RE = re.compile(r"\b(\d{6})\b")
MAIL_SECONDS = 30.0
SETUP_CONCURRENCY = 8


class SetupError(Exception):
    """A virtual user or room could not be prepared."""


@attrs.define
class VUser:
    index: int
    login: str
    id: str = ""
    token: str = ""
    room_id: str = ""


async def gql(
    http: httpx.AsyncClient, token: str, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    r = await http.post(
        "/api/graphql",
        json={"query": query, "variables": variables or {}},
        headers={"authorization": f"Bearer {token}"},
    )
    doc: dict[str, Any] = r.json()
    if r.status_code != 200 or doc.get("errors"):
        raise SetupError(f"GraphQL failed ({r.status_code}): {json.dumps(doc)[:300]}")
    return doc["data"]  # type: ignore[no-any-return]


async def _login(http: httpx.AsyncClient, login: str, password: str) -> str | None:
    body = {"login": login, "password": password, "mode": "token"}
    r = await http.post("/auth/login", json=body)
    http.cookies.clear()
    if r.status_code == 200:
        return str(r.json()["token"])
    if r.status_code in (400, 401):
        return None
    raise SetupError(f"login of {login} answered {r.status_code}: {r.text[:200]}")


async def _register(http: httpx.AsyncClient, sink: SmtpSink | None, u: VUser, pw: str) -> None:
    if sink is None:
        raise SetupError(
            f"{u.login} does not exist and there is no SMTP sink to register it "
            "(point the server's SMTP at --smtp-port)"
        )
    email = f"{u.login}@loadtest.example.com"
    before = len(sink.to(email))
    r = await http.post("/auth/register", json={"email": email})
    if r.status_code != 200:
        raise SetupError(f"register {u.login}: {r.status_code} {r.text[:200]}")
    with trio.move_on_after(MAIL_SECONDS):
        await sink.wait_for(email, before + 1)
    msgs = sink.to(email)
    if len(msgs) <= before:
        raise SetupError(f"no verification mail for {email} within {MAIL_SECONDS:g}s")
    match = CODE_RE.search(msgs[-1].get_content())
    if not match:
        raise SetupError(f"no code in the verification mail for {email}")
    r = await http.post("/auth/register/verify-code", json={"email": email, "code": match[1]})
    if r.status_code != 200:
        raise SetupError(f"verify {u.login}: {r.status_code} {r.text[:200]}")
    done = {"token": r.json()["token"], "login": u.login, "password": pw}
    r = await http.post("/auth/register/complete", json=done)
    http.cookies.clear()
    if r.status_code != 200:
        raise SetupError(f"complete {u.login}: {r.status_code} {r.text[:200]}")


async def _prepare(
    http: httpx.AsyncClient, sink: SmtpSink | None, u: VUser, pw: str, known: str
) -> None:
    """Token from the state file if still valid, else log in, else register."""
    if known:
        try:
            u.id = (await gql(http, known, "{ viewer { id } }"))["viewer"]["id"]
            u.token = known
            return
        except (SetupError, TypeError):
            pass
    token = await _login(http, u.login, pw)
    if token is None:
        await _register(http, sink, u, pw)
        token = await _login(http, u.login, pw)
        if token is None:
            raise SetupError(f"{u.login} registered but cannot log in")
    u.token = token
    u.id = (await gql(http, token, "{ viewer { id } }"))["viewer"]["id"]


def _load_state(path: Path, url: str) -> dict[str, str]:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    tokens = doc.get(url, {}) if isinstance(doc, dict) else {}
    return {str(k): str(v) for k, v in tokens.items()} if isinstance(tokens, dict) else {}


def _save_state(path: Path, url: str, users: list[VUser]) -> None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        doc = {}
    doc[url] = {u.login: u.token for u in users}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(doc, indent=1))
    tmp.chmod(0o600)  # bearer tokens
    tmp.replace(path)


async def prepare_users(
    http: httpx.AsyncClient, sink: SmtpSink | None, count: int, pw: str, state: Path | None
) -> list[VUser]:
    known = _load_state(state, str(http.base_url)) if state else {}
    users = [VUser(i, f"lt{i}") for i in range(count)]
    limiter = trio.CapacityLimiter(SETUP_CONCURRENCY)

    async def one(u: VUser) -> None:
        async with limiter:
            await _prepare(http, sink, u, pw, known.get(u.login, ""))

    async with trio.open_nursery() as nursery:
        for u in users:
            nursery.start_soon(one, u)
    if state:
        _save_state(state, str(http.base_url), users)
    return users


ROOMS = "{ rooms { id name isMember } }"
CREATE = "mutation($n: String!) { createRoom(name: $n) { id name } }"
JOIN = "mutation($r: ID!) { joinRoom(roomId: $r) { id } }"
MY_ROOMS = "{ myRooms { id } }"


async def prepare_rooms(http: httpx.AsyncClient, users: list[VUser], count: int) -> list[str]:
    """``lt-room-<i>``: reuse or create; user i is put in room i % count."""
    owner = users[0]
    existing = {r["name"]: r["id"] for r in (await gql(http, owner.token, ROOMS))["rooms"]}
    ids: list[str] = []
    for i in range(count):
        name = f"lt-room-{i}"
        if name not in existing:
            created = await gql(http, owner.token, CREATE, {"n": name})
            existing[name] = created["createRoom"]["id"]
        ids.append(existing[name])
    for u in users:
        u.room_id = ids[u.index % count]
    limiter = trio.CapacityLimiter(SETUP_CONCURRENCY)

    async def join(u: VUser) -> None:
        async with limiter:
            mine = {r["id"] for r in (await gql(http, u.token, MY_ROOMS))["myRooms"]}
            if u.room_id not in mine:
                await gql(http, u.token, JOIN, {"r": u.room_id})

    async with trio.open_nursery() as nursery:
        for u in users:
            nursery.start_soon(join, u)
    return ids
