"""Run GraphQL operations for any transport (HTTP or WebSocket).

Payload shape is checked here, the document checked once (parsed and
validated within bounds, ``chatto.gql.documents``), and the operation type
decided before execution so transports can refuse what they do not carry
(subscriptions over plain HTTP, mutations over GET). Results are encoded
here too, so one response cap holds for every transport.
"""

from __future__ import annotations

import json
import logging
from typing import Any, cast

import ariadne
import attrs
import trio
from ariadne.types import QueryValidator
from graphql import (
    DocumentNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    execute_sync,
    get_operation_ast,
)

from chatto.config_schema import GraphqlConfig
from chatto.gql.acyclic import AcyclicExecutor
from chatto.gql.context import RequestContext
from chatto.gql.documents import CACHE, RequestError, worker_limiter
from chatto.gql.limits import only_introspection_roots
from chatto.gql.schema import format_error
from chatto.tuning import gc_paused

__all__ = ["CACHE", "Operation", "RequestError", "encode_response", "execute", "prepare"]

# Ariadne logs every GraphQL error with the query text, which may hold user
# input (even passwords inlined by a careless client). format_error logs the
# unexpected ones itself, without the document, so Ariadne's logger is muted.
_ARIADNE_LOG = logging.getLogger("chatto.graphql.ariadne")
_ARIADNE_LOG.disabled = True


@attrs.frozen
class Operation:
    """A parsed, shape-checked, validated request (``errors`` empty: valid)."""

    document: DocumentNode
    data: dict[str, Any]
    kind: str  # "query" | "mutation" | "subscription"
    errors: tuple[GraphQLError, ...] = ()
    introspection: bool = False  # only __schema/__type/__typename at the root
    fields: tuple[str, ...] = ()  # root field names as written (for metrics)


async def prepare(schema: GraphQLSchema, payload: Any, limits: GraphqlConfig) -> Operation:
    """Check ``{query, variables?, operationName?}``, then parse and validate the query."""
    if not isinstance(payload, dict):
        raise RequestError("request must be a JSON object")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError("'query' must be a non-empty string")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError("'variables' must be an object")
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestError("'operationName' must be a string")
    checked = await CACHE.check(schema, query, limits)
    op = get_operation_ast(checked.document, name)
    if op is None:
        raise RequestError("no operation with that name (or several and no operationName)")
    data = {"query": query, "variables": variables, "operationName": name}
    # Introspection alone (the limits rule refuses it mixed with other
    # fields) touches only the schema, so execute() may run it in a thread.
    names = [s.name.value for s in op.selection_set.selections if isinstance(s, FieldNode)]
    roots = tuple(dict.fromkeys(names))  # aliases repeat a field; keep the first
    intro = only_introspection_roots(op) and bool({"__schema", "__type"} & set(roots))
    return Operation(checked.document, data, op.operation.value, checked.errors, intro, roots)


async def execute(schema: GraphQLSchema, ctx: RequestContext, op: Operation) -> dict[str, Any]:
    """Execute a query or mutation; return the response document (and count it)."""
    result = await _execute(schema, ctx, op)
    outcome = "invalid" if op.errors else "error" if result.get("errors") else "ok"
    ctx.services.metrics.graphql(ctx.transport, op, outcome)
    return result


async def _execute(schema: GraphQLSchema, ctx: RequestContext, op: Operation) -> dict[str, Any]:
    if op.errors:
        return {"errors": [format_error(e) for e in op.errors]}
    if op.introspection:
        # Pure reads of the schema: no resolver of ours, nothing awaits, so a
        # worker thread can run it while the loop serves everyone else.
        return format_result(
            await trio.to_thread.run_sync(_introspect, schema, op, limiter=worker_limiter())
        )
    _ok, result = await ariadne.graphql(
        schema,
        op.data,
        context_value=ctx,
        query_document=op.document,
        error_formatter=format_error,
        introspection=True,
        logger=_ARIADNE_LOG,
        # Validated in prepare() (off the loop); hand Ariadne the answer.
        query_validator=cast(QueryValidator, lambda *_a, **_k: list(op.errors)),
        execution_context_class=AcyclicExecutor,
    )
    return dict(result)


def _introspect(schema: GraphQLSchema, op: Operation) -> Any:
    with gc_paused():
        data = op.data
        return execute_sync(
            schema, op.document, None, None, data["variables"], data["operationName"]
        )


def encode_response(result: dict[str, Any], limit: int) -> str:
    """The JSON text of a result; ``RequestError`` if it is over ``limit`` bytes."""
    text = json.dumps(result, separators=(",", ":"), ensure_ascii=False)
    # A character is at most 4 bytes: encode only when the length alone cannot tell.
    if len(text) > limit or (len(text) * 4 > limit and len(text.encode()) > limit):
        raise RequestError(
            f"the response is larger than {limit} bytes; ask for fewer fields or smaller pages",
            "RESPONSE_TOO_LARGE",
        )
    return text


def format_result(result: Any) -> dict[str, Any]:
    """Turn an ExecutionResult into a response payload."""
    doc: dict[str, Any] = {"data": result.data}
    if result.errors:
        doc["errors"] = [format_error(e) for e in result.errors]
    return doc
