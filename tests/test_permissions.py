"""Roles and permissions through the API; the admin/content boundary."""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from graphql import GraphQLEnumType, GraphQLList, GraphQLNonNull, GraphQLScalarType

from actors.rbac import PERMISSIONS
from chatto.gql.schema import build_schema, required_permission
from tests.authflow import login_token, register
from tests.conftest import OWNER_EMAIL, AuthEnv
from tests.test_messaging import POST, gql, ok

PW = "a long enough password"
SECRET_TEXT = "never-for-admin-eyes"


async def people(env: AuthEnv, c: httpx.AsyncClient, *names: str) -> dict[str, tuple[str, str]]:
    out = {}
    for name in names:
        email = OWNER_EMAIL if name == "owner" else f"{name}@example.com"
        acct = await register(c, env.sink, email, name, PW)
        out[name] = (acct.user["id"], await login_token(c, name, PW))
    return out


async def test_roles_scopes_explanations_and_lockdown(auth_env: AuthEnv) -> None:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "ada", "bea")
            (_o, to), (ada, ta), (bea, tb) = p["owner"], p["ada"], p["bea"]
            roles = {
                r["id"]: r
                for r in (await ok(c, ta, "{ roles { id name builtIn memberIds } }"))["roles"]
            }
            assert set(roles) >= {"everyone", "moderator", "admin", "owner"}
            assert roles["owner"]["memberIds"] == [p["owner"][0]]
            # Without role.manage nothing can be changed.
            denied = await gql(c, ta, 'mutation { createRole(name: "x") { id } }')
            assert denied["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            assert (await gql(c, to, 'mutation { deleteRole(roleId: "admin") }'))["errors"]
            role = (await ok(c, to, 'mutation { createRole(name: "Helpers") { id builtIn } }'))[
                "createRole"
            ]
            assert role["builtIn"] is False
            await ok(
                c,
                to,
                "mutation($r: ID!, $u: ID!) { assignRole(roleId: $r, userId: $u) }",
                r=role["id"],
                u=ada,
            )
            setp = "mutation($s: String!, $sc: String!, $p: String!, $e: PermissionEffect!) { setPermission(subject: $s, scope: $sc, permission: $p, effect: $e) }"
            await ok(
                c, to, setp, s=f"role:{role['id']}", sc="server", p="room.ban-member", e="ALLOW"
            )
            perms = (await ok(c, ta, '{ viewerPermissions(roomId: "general") }'))[
                "viewerPermissions"
            ]
            assert "room.ban-member" in perms and "server.manage" not in perms
            # Lock #general down for everyone: nobody but the owner may post.
            await ok(c, to, setp, s="role:everyone", sc="room:general", p="message.post", e="DENY")
            locked = await gql(
                c, tb, 'mutation { postMessage(roomId: "general", body: "x") { id } }'
            )
            assert locked["errors"][0]["extensions"]["code"] == "FORBIDDEN"
            room = await ok(c, tb, '{ room(id: "general") { readOnly } }')
            assert room["room"]["readOnly"] is True
            explain = "query($u: ID!, $p: String!, $r: ID) { explainPermission(userId: $u, permission: $p, roomId: $r) { allowed reason } }"
            why = (await ok(c, to, explain, u=bea, p="message.post", r="general"))[
                "explainPermission"
            ]
            assert why == {"allowed": False, "reason": "denied to role:everyone at room:general"}
            assert (await gql(c, tb, explain, u=bea, p="message.post", r="general"))["errors"]
            await ok(c, to, setp, s="role:everyone", sc="room:general", p="message.post", e="CLEAR")
            await ok(
                c, tb, 'mutation { postMessage(roomId: "general", body: "open again") { id } }'
            )
            # #announcements is read-only by a seeded room-scope deny.
            why = (await ok(c, to, explain, u=bea, p="message.post", r="announcements"))[
                "explainPermission"
            ]
            assert why["allowed"] is False and "room:announcements" in why["reason"]
            await ok(
                c, to, 'mutation { postMessage(roomId: "announcements", body: "news") { id } }'
            )
            await ok(c, to, "mutation($r: ID!) { deleteRole(roleId: $r) }", r=role["id"])
            perms = (await ok(c, ta, '{ viewerPermissions(roomId: "general") }'))[
                "viewerPermissions"
            ]
            assert "room.ban-member" not in perms


async def test_admins_and_owners_never_see_message_content(auth_env: AuthEnv) -> None:
    services = auth_env.server.running.services
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "adm", "u1", "u2")
            await ok(
                c,
                p["owner"][1],
                'mutation($u: ID!) { assignRole(roleId: "admin", userId: $u) }',
                u=p["adm"][0],
            )
            dm = (
                await ok(
                    c,
                    p["u1"][1],
                    "mutation($p: [ID!]!) { startDM(participantIds: $p) { id } }",
                    p=[p["u2"][0]],
                )
            )["startDM"]["id"]
            dm_msg = (await ok(c, p["u1"][1], POST, r=dm, b=f"{SECRET_TEXT} dm"))["postMessage"]
            pin = "mutation($r: ID!, $e: ID!) { pinMessage(roomId: $r, eventId: $e) }"
            await ok(c, p["u2"][1], pin, r=dm, e=dm_msg["id"])  # any DM participant
            team = (await ok(c, p["u1"][1], 'mutation { createRoom(name: "team") { id } }'))[
                "createRoom"
            ]["id"]
            team_msg = await ok(c, p["u1"][1], POST, r=team, b=f"{SECRET_TEXT} team")
            await ok(c, p["u1"][1], pin, r=team, e=team_msg["postMessage"]["id"])
            await ok(c, p["u2"][1], POST, r="general", b=f"{SECRET_TEXT} general")
            query = "{ admin { users { id login emails isOwner roles createdAt } rooms { id name memberCount archived } nats { connected reconnects streamMessages streamBytes streamConsumers liveActors liveSubscribers } config } }"
            kms_before = await services.messaging.keys._kms.statistics()
            opened_before = services.messaging.keys.opened
            for who in ("owner", "adm"):
                r = await c.post(
                    "/api/graphql",
                    json={"query": query},
                    headers={"authorization": f"Bearer {p[who][1]}"},
                )
                body = r.json()
                assert "errors" not in body, body
                text = json.dumps(body)
                assert SECRET_TEXT not in text and "secret_key" in text
                assert "<redacted>" in text and services.config.core.secret_key not in text
                assert {u["login"] for u in body["data"]["admin"]["users"]} >= {"u1", "u2"}
                assert dm not in text  # DMs are not even listed
                assert "password" not in body["data"]["admin"]["users"][0]
            assert await services.messaging.keys._kms.statistics() == kms_before
            assert services.messaging.keys.opened == opened_before
            # A plain user gets nothing.
            denied = await gql(c, p["u1"][1], query)
            assert {e["extensions"]["code"] for e in denied["errors"]} == {"FORBIDDEN"}
            # Owners cannot moderate inside a DM they are not in, nor read it.
            msgs = await gql(
                c,
                p["owner"][1],
                "query($r: ID!) { room(id: $r) { events { events { body } } } }",
                r=dm,
            )
            assert msgs["data"]["room"] is None
            # Pins are content: a DM's stay invisible, a channel's are for members.
            pins = "query($r: ID!) { room(id: $r) { pinnedMessages { body } members { users { id } } } }"
            for who in ("owner", "adm"):
                assert (await gql(c, p[who][1], pins, r=dm)) == {"data": {"room": None}}
                body = await gql(c, p[who][1], pins, r=team)
                assert SECRET_TEXT not in json.dumps(body)
                assert {e["extensions"]["code"] for e in body["errors"]} == {"FORBIDDEN"}


def _dummy(arg_type: Any, name: str) -> Any:
    t = arg_type.of_type if isinstance(arg_type, GraphQLNonNull) else arg_type
    if isinstance(t, GraphQLList):
        return [_dummy(t.of_type, name)]
    if isinstance(t, GraphQLEnumType):
        return next(iter(t.values))
    assert isinstance(t, GraphQLScalarType)
    if name == "roomId":
        return "general"
    return {"ID": "someid", "String": "some text", "Boolean": True, "Int": 1, "Upload": "f"}[t.name]


def _selection(field: Any) -> str:
    t = field.type
    while hasattr(t, "of_type"):
        t = t.of_type
    return " { __typename }" if hasattr(t, "fields") else ""


async def test_every_mutation_is_forbidden_without_its_permission(auth_env: AuthEnv) -> None:
    """Generated from the schema: new mutations are covered automatically."""
    services = auth_env.server.running.services
    schema = build_schema()
    fields = schema.mutation_type.fields  # type: ignore[union-attr]
    self_service = {
        n for n, f in fields.items() if any(d.name.value == "self" for d in f.ast_node.directives)
    }
    self_or = {n: required_permission(f, "selfOr") for n, f in fields.items()}
    self_or = {n: p for n, p in self_or.items() if p}
    guarded = {n: required_permission(f) for n, f in fields.items() if required_permission(f)}
    declared = self_service | set(self_or) | set(guarded)
    assert set(fields) == declared, "every mutation needs @requires, @self or @selfOr"
    assert set(guarded.values()) | set(self_or.values()) <= set(PERMISSIONS)
    with trio.fail_after(120):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=20) as c:
            p = await people(auth_env, c, "owner", "nobody")
            setp = 'mutation($s: String!, $p: String!) { setPermission(subject: $s, scope: "server", permission: $p, effect: DENY) }'
            for perm in PERMISSIONS:
                await ok(c, p["owner"][1], setp, s=f"user:{p['nobody'][0]}", p=perm)
            token = p["nobody"][1]
            for name, perm in sorted(guarded.items()):
                field = fields[name]
                args = {a: _dummy(t.type, a) for a, t in field.args.items()}
                decl = ", ".join(f"${a}: {t.type}" for a, t in field.args.items())
                call = ", ".join(f"{a}: ${a}" for a in field.args)
                q = f"mutation{f'({decl})' if decl else ''} {{ {name}{f'({call})' if call else ''}{_selection(field)} }}"
                head = await services.store.head()
                r = await c.post(
                    "/api/graphql",
                    json={"query": q, "variables": args},
                    headers={"authorization": f"Bearer {token}"},
                )
                body = r.json()
                assert body.get("errors"), (name, body)
                assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN", (name, perm, body)
                assert await services.store.head() == head, f"{name} changed something"
