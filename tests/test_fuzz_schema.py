"""The schema fuzzed with schemathesis (GraphQL mode) against a running server.

Schemathesis generates documents for every query and mutation from
``chatto/gql/schema.graphql``; each is sent anonymously and as a signed-in user. Errors
the user must act on are fine; a 5xx or an INTERNAL error is a failure.
"""

from __future__ import annotations

import warnings

import httpx
import schemathesis
import trio

from chatto.gql.schema import load_sdl
from tests.authflow import bearer, login_token, register
from tests.conftest import AuthEnv

EXAMPLES_PER_OPERATION = 4


def generate() -> list[str]:
    from graphql import StringValueNode
    from hypothesis import strategies as st

    # Uploads only travel in multipart requests; in JSON they are plain strings.
    schemathesis.graphql.scalar(
        "Upload", st.text(max_size=8).map(lambda s: StringValueNode(value=s))
    )
    schema = schemathesis.graphql.from_file(load_sdl())
    docs: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # .example() is meant for interactive use
        for result in schema.get_all_operations():
            op = result.ok()
            strategy = op.as_strategy()
            docs.extend(str(strategy.example().body) for _ in range(EXAMPLES_PER_OPERATION))
    return docs


async def test_generated_documents_never_crash_the_server(auth_env: AuthEnv) -> None:
    documents = await trio.to_thread.run_sync(generate)
    assert len(documents) > 100
    with trio.fail_after(300):
        async with httpx.AsyncClient(base_url=auth_env.url, timeout=30) as c:
            await register(c, auth_env.sink, "fuzz@example.com", "fuzzer", "a long enough password")
            token = await login_token(c, "fuzzer", "a long enough password")
            for i, doc in enumerate(documents):
                headers = bearer(token) if i % 2 else {}
                r = await c.post("/api/graphql", json={"query": doc}, headers=headers)
                assert r.status_code < 500, (r.status_code, doc, r.text[:500])
                body = r.json()
                codes = {e.get("extensions", {}).get("code") for e in body.get("errors", [])}
                assert "INTERNAL" not in codes, (doc, body)
            assert (await c.get("/readyz")).status_code == 200
