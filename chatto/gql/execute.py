"""Run GraphQL operations for any transport (HTTP or WebSocket).

Payload shape is checked here, the document parsed once, and the operation
type decided before execution so transports can refuse what they do not
carry (subscriptions over plain HTTP, mutations over GET).
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, cast

import ariadne
import attrs
from ariadne.types import QueryValidator
from graphql import (
    DocumentNode,
    GraphQLError,
    GraphQLSchema,
    get_operation_ast,
    parse,
    validate,
)

from chatto.errors import InvalidInputError
from chatto.gql.acyclic import AcyclicExecutor
from chatto.gql.context import RequestContext
from chatto.gql.limits import LimitsRule
from chatto.gql.schema import format_error

MAX_QUERY_CHARS = 100_000

# Ariadne logs every GraphQL error with the query text, which may hold user
# input (even passwords inlined by a careless client). format_error logs the
# unexpected ones itself, without the document, so Ariadne's logger is muted.
_ARIADNE_LOG = logging.getLogger("chatto.graphql.ariadne")
_ARIADNE_LOG.disabled = True


class DocumentCache:
    """Parsed and validated documents by query text (bounded LRU).

    Clients send the same few documents over and over; parsing and
    validating them dominates the cost of small operations, and both
    results are pure functions of the text and the schema.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._docs: OrderedDict[str, DocumentNode] = OrderedDict()
        self._errors: dict[int, tuple[DocumentNode, list[GraphQLError]]] = {}

    def parse(self, query: str) -> DocumentNode:
        doc = self._docs.get(query)
        if doc is not None:
            self._docs.move_to_end(query)
            return doc
        doc = parse(query)
        self._docs[query] = doc
        while len(self._docs) > self.size:
            _q, old = self._docs.popitem(last=False)
            self._errors.pop(id(old), None)
        return doc

    def validate(
        self, schema: GraphQLSchema, document: DocumentNode, *args: Any, **kwargs: Any
    ) -> list[GraphQLError]:
        """Ariadne ``query_validator``: validate once per cached document."""
        hit = self._errors.get(id(document))
        if hit is not None and hit[0] is document:
            return hit[1]
        errors = list(validate(schema, document, *args, **kwargs))
        if any(d is document for d in self._docs.values()):
            self._errors[id(document)] = (document, errors)
        return errors


CACHE = DocumentCache()


@attrs.frozen
class Operation:
    """A parsed, shape-checked request."""

    document: DocumentNode
    data: dict[str, Any]
    kind: str  # "query" | "mutation" | "subscription"


class RequestError(InvalidInputError):
    """The request cannot be executed at all (bad shape, syntax error)."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


def prepare(payload: Any) -> Operation:
    """Check ``{query, variables?, operationName?}`` and parse the query."""
    if not isinstance(payload, dict):
        raise RequestError("request must be a JSON object")
    query = payload.get("query")
    if not isinstance(query, str) or not query.strip():
        raise RequestError("'query' must be a non-empty string")
    if len(query) > MAX_QUERY_CHARS:
        raise RequestError(f"'query' is longer than {MAX_QUERY_CHARS} characters")
    variables = payload.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise RequestError("'variables' must be an object")
    name = payload.get("operationName")
    if name is not None and not isinstance(name, str):
        raise RequestError("'operationName' must be a string")
    try:
        document = CACHE.parse(query)
    except GraphQLError as exc:
        raise RequestError(exc.message, "GRAPHQL_PARSE_FAILED") from exc
    op = get_operation_ast(document, name)
    if op is None:
        raise RequestError("no operation with that name (or several and no operationName)")
    data = {"query": query, "variables": variables, "operationName": name}
    return Operation(document=document, data=data, kind=op.operation.value)


async def execute(schema: GraphQLSchema, ctx: RequestContext, op: Operation) -> dict[str, Any]:
    """Execute a query or mutation; return the response document."""
    _ok, result = await ariadne.graphql(
        schema,
        op.data,
        context_value=ctx,
        query_document=op.document,
        error_formatter=format_error,
        introspection=True,
        logger=_ARIADNE_LOG,
        query_validator=cast(QueryValidator, CACHE.validate),
        validation_rules=[LimitsRule],
        execution_context_class=AcyclicExecutor,
    )
    return dict(result)


def format_result(result: Any) -> dict[str, Any]:
    """Turn an ExecutionResult from a subscription stream into a payload."""
    doc: dict[str, Any] = {"data": result.data}
    if result.errors:
        doc["errors"] = [format_error(e) for e in result.errors]
    return doc
