"""Denial of service without an account (issue #16, items 1-3).

Each test sends what an attacker would, against a real server on loopback,
and asserts on work counted (selections visited, parts refused, error
codes), never on wall time. ``tests.loopstall`` reports the longest event
loop stall around each attack (``pytest -s tests/test_dos.py``). The HTTP
tests import nothing new, so they also run against the code before the fix.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import trio
from graphql import get_introspection_query, parse, specified_rules, validate

from chatto.gql.schema import build_schema
from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv, ConfigFactory, ServerHandle, start_server
from tests.loopstall import measure_stall

SCHEMA = build_schema()


def fanout(n: int) -> str:
    """n fragments, each spreading the next one twice: 2^n ``__typename`` at the bottom."""
    frags = [f"fragment F{i} on Query {{ ...F{i + 1} ...F{i + 1} }}" for i in range(n)]
    return " ".join(["{ ...F0 }", *frags, f"fragment F{n} on Query {{ __typename }}"])


async def post(url: str, doc: dict[str, Any], label: str) -> httpx.Response:
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=60) as c, measure_stall(label):
            return await c.post("/api/graphql", json=doc)


def code(r: httpx.Response) -> str:
    return str(r.json()["errors"][0]["extensions"]["code"])


# --- 1. fragment fan-out ---------------------------------------------------------
def test_fragment_fanout_is_measured_once_per_fragment() -> None:
    from chatto.gql.limits import Measurer, OverLimit

    for n in (20, 30, 150):
        doc = parse(fanout(n))
        frags = {d.name.value: d for d in doc.definitions[1:]}  # type: ignore[attr-defined]
        measurer = Measurer(frags.get)
        try:
            measurer.operation(doc.definitions[0])  # type: ignore[arg-type]
        except OverLimit as exc:
            assert exc.code == "QUERY_TOO_COMPLEX"
        else:
            raise AssertionError(f"{n} fragments passed")
        # Two spreads per fragment, each fragment walked once, then the bound stops it.
        assert measurer.visits <= 2 * n + 2, (n, measurer.visits)


def test_every_field_counts_including_typename() -> None:
    from chatto.gql.limits import LimitsRule

    rules = [*specified_rules, LimitsRule]
    over = validate(SCHEMA, parse("{" + " __typename" * 501 + " }"), rules)
    assert [e.extensions["code"] for e in over if e.extensions] == ["QUERY_TOO_COMPLEX"]
    assert validate(SCHEMA, parse("{" + " __typename" * 500 + " }"), rules) == []


async def test_fragment_fanout_refused_over_http(chatto: ServerHandle) -> None:
    query = fanout(20)
    assert len(query) < 900  # the 818-character document
    r = await post(chatto.url, {"query": query}, "fragment fan-out, 20 fragments")
    assert r.status_code == 400
    assert code(r) == "QUERY_TOO_COMPLEX"


async def test_quadratic_validation_bounded_before_it_runs(chatto: ServerHandle) -> None:
    # OverlappingFieldsCanBeMerged compares every pair of same-named fields.
    same = "{" + " server { name }" * 1001 + " }"
    r = await post(chatto.url, {"query": same}, "1001 same-named fields")
    assert (r.status_code, code(r)) == (400, "DOCUMENT_TOO_LARGE")
    assert "selections" in r.json()["errors"][0]["message"]
    tokens = "{" + " __typename" * 5001 + " }"
    r = await post(chatto.url, {"query": tokens}, "5001 tokens")
    assert (r.status_code, code(r)) == (400, "DOCUMENT_TOO_LARGE")
    # The worst document the bounds let through, validated in a worker thread.
    r = await post(chatto.url, {"query": "{" + " server { name }" * 250 + " }"}, "500 selections")
    assert r.status_code == 200, r.text


# --- 2. introspection ----------------------------------------------------------------
async def test_introspection_stays_available(chatto: ServerHandle) -> None:
    r = await post(chatto.url, {"query": get_introspection_query()}, "standard introspection")
    assert r.status_code == 200, r.text
    assert r.json()["data"]["__schema"]["queryType"]["name"] == "Query"
    async with httpx.AsyncClient(base_url=chatto.url) as c:
        assert (await c.get("/api/playground")).status_code == 200


async def test_introspection_through_aliases_refused(chatto: ServerHandle) -> None:
    one = "{ types { name fields { name } } }"
    many = "{ " + " ".join(f"s{i}: __schema {one}" for i in range(200)) + " }"
    r = await post(chatto.url, {"query": many}, "200 aliased __schema")
    assert (r.status_code, code(r)) == (400, "DOCUMENT_TOO_LARGE")  # 200 aliases
    r = await post(
        chatto.url, {"query": f"{{ a: __schema {one} b: __schema {one} }}"}, "2 __schema"
    )
    assert (r.status_code, code(r)) == (400, "INTROSPECTION_LIMIT")
    mixed = f"{{ __schema {one} server {{ name }} }}"
    r = await post(chatto.url, {"query": mixed}, "__schema beside other fields")
    assert (r.status_code, code(r)) == (400, "INTROSPECTION_LIMIT")
    hidden = f"{{ ...S }} fragment S on Query {{ __schema {one} }}"
    r = await post(chatto.url, {"query": hidden}, "__schema in a fragment")
    assert (r.status_code, code(r)) == (400, "INTROSPECTION_LIMIT")


async def test_response_size_is_capped(nursery: trio.Nursery, make_config: ConfigFactory) -> None:
    handle = await start_server(nursery, make_config(CHATTO_GRAPHQL_MAX_RESPONSE_BYTES="20000"))
    r = await post(handle.url, {"query": get_introspection_query()}, "capped introspection")
    assert (r.status_code, code(r)) == (400, "RESPONSE_TOO_LARGE")
    r = await post(handle.url, {"query": "{ server { name } }"}, "small query")
    assert r.status_code == 200
    await handle.stop()


# --- 3. multipart ----------------------------------------------------------------
UPLOAD = "mutation($r: ID!, $f: Upload!) { uploadAttachment(roomId: $r, file: $f) { id } }"


def many_parts(count: int) -> tuple[bytes, str]:
    """A multipart body of ``count`` one-byte parts after operations and map."""
    ops = json.dumps({"query": UPLOAD, "variables": {"r": "x", "f": None}})
    head = '--B\r\nContent-Disposition: form-data; name="{}"\r\n\r\n{}\r\n'
    body = head.format("operations", ops) + head.format("map", '{"0": ["variables.f"]}')
    body += "".join(head.format(i, "x") for i in range(count)) + "--B--\r\n"
    return body.encode(), "multipart/form-data; boundary=B"


async def post_parts(url: str, token: str, count: int, label: str) -> httpx.Response:
    body, ctype = many_parts(count)
    assert count < 10_000 or len(body) < 700_000  # the 0.64 MB body
    headers = {"content-type": ctype, **(bearer(token) if token else {})}
    with trio.fail_after(60):
        async with httpx.AsyncClient(base_url=url, timeout=60) as c, measure_stall(label):
            return await c.post("/api/graphql", content=body, headers=headers)


async def test_anonymous_multipart_refused_before_the_body(chatto: ServerHandle) -> None:
    r = await post_parts(chatto.url, "", 10_000, "anonymous 10,000-part multipart")
    assert (r.status_code, code(r)) == (401, "UNAUTHENTICATED")


async def test_multipart_parts_are_counted_before_parsing(auth_env: AuthEnv) -> None:
    async with httpx.AsyncClient(base_url=auth_env.url) as c:
        await register(c, auth_env.sink, "parts@example.com", "parts", "a long enough password")
        token = await login_token(c, "parts", "a long enough password")
    r = await post_parts(auth_env.url, token, 10_000, "signed-in 10,000-part multipart")
    assert (r.status_code, code(r)) == (400, "TOO_MANY_PARTS")
    r = await post_parts(auth_env.url, token, 1, "signed-in 3-part multipart")
    assert r.status_code == 200  # parsed (in a thread) and executed: the room does not exist
    assert r.json()["errors"][0]["extensions"]["code"] != "TOO_MANY_PARTS"
