"""Parsed and validated GraphQL documents: bounded, cached, off the event loop.

A document is parsed with a token bound, its selections and aliases counted
(a linear walk, before validation), then validated, all in a worker thread:
graphql-core's ``OverlappingFieldsCanBeMergedRule`` is quadratic in fields
sharing a response name (200 copies of ``server { name }``, 3 KB, took
0.1 s), so the counts bound the total work and the thread keeps that work
off the loop (the interpreter hands the loop the GIL every few ms). The
result, document and errors, is cached by query text: clients send the same
few documents, and a hit costs nothing.
"""

from __future__ import annotations

import functools
from collections import OrderedDict

import attrs
import trio
from graphql import (
    ASTValidationRule,
    DocumentNode,
    ExecutableDefinitionNode,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    SelectionSetNode,
    parse,
    specified_rules,
    validate,
)

from chatto.config_schema import GraphqlConfig
from chatto.errors import InvalidInputError
from chatto.gql.limits import QueryBounds, limits_rule
from chatto.tuning import gc_paused

# One or two cores' worth of validation at a time; more would only slow the
# loop's own turns at the GIL, and cached documents never wait here.
_THREADS: trio.lowlevel.RunVar[trio.CapacityLimiter] = trio.lowlevel.RunVar("gql_threads")


class RequestError(InvalidInputError):
    """The request cannot be executed at all (bad shape, syntax error, too large)."""

    def __init__(self, message: str, code: str = "BAD_REQUEST") -> None:
        super().__init__(message)
        self.code = code


@attrs.frozen
class Checked:
    """A parsed document and its validation errors (empty: valid)."""

    document: DocumentNode
    errors: tuple[GraphQLError, ...]


@functools.cache
def rules_for(bounds: QueryBounds) -> tuple[type[ASTValidationRule], ...]:
    """The spec's rules plus ours; one rule class per distinct bounds."""
    return (*specified_rules, limits_rule(bounds))


def count_selections(document: DocumentNode) -> tuple[int, int]:
    """(selections, aliases) as written in every definition, no expansion."""
    selections, aliases = 0, 0
    stack: list[SelectionSetNode] = [
        d.selection_set for d in document.definitions if isinstance(d, ExecutableDefinitionNode)
    ]
    while stack:
        for sel in stack.pop().selections:
            selections += 1
            if isinstance(sel, FieldNode) and sel.alias is not None:
                aliases += 1
            inner = getattr(sel, "selection_set", None)
            if inner is not None:
                stack.append(inner)
    return selections, aliases


def check_document(schema: GraphQLSchema, query: str, limits: GraphqlConfig) -> Checked:
    """Parse, count and validate (blocking: call through ``DocumentCache.check``)."""
    try:
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLError as exc:
        code = "DOCUMENT_TOO_LARGE" if "tokens" in exc.message else "GRAPHQL_PARSE_FAILED"
        raise RequestError(exc.message, code) from exc
    selections, aliases = count_selections(document)
    if selections > limits.max_selections:
        raise RequestError(
            f"the document has more than {limits.max_selections} selections", "DOCUMENT_TOO_LARGE"
        )
    if aliases > limits.max_aliases:
        raise RequestError(
            f"the document has more than {limits.max_aliases} aliases", "DOCUMENT_TOO_LARGE"
        )
    bounds = QueryBounds(limits.max_depth, limits.max_complexity)
    return Checked(document, tuple(validate(schema, document, rules_for(bounds))))


class DocumentCache:
    """Checked documents by (limits, query text), a bounded LRU.

    Refusals are not cached: they raise, and the next attempt costs a
    worker thread again, behind authentication and the rate limits.
    """

    def __init__(self, size: int = 512) -> None:
        self.size = size
        self._items: OrderedDict[tuple[GraphqlConfig, str], Checked] = OrderedDict()
        self.misses = 0

    async def check(self, schema: GraphQLSchema, query: str, limits: GraphqlConfig) -> Checked:
        """The checked document; ``RequestError`` for a refused one."""
        if len(query) > limits.max_query_chars:
            raise RequestError(
                f"'query' is longer than {limits.max_query_chars} characters", "DOCUMENT_TOO_LARGE"
            )
        key = (limits, query)
        hit = self._items.get(key)
        if hit is not None:
            self._items.move_to_end(key)
            return hit
        self.misses += 1
        checked = await trio.to_thread.run_sync(
            _check_off_loop, schema, query, limits, limiter=worker_limiter()
        )
        # Requests that missed together parsed the same text together: they
        # all get the first document stored. One text, one document object,
        # or live fan-out (gql/fanout.py: shared results by document) would
        # execute every event once per subscriber — 20 clients subscribing at
        # the same moment left a hot room at ~5.5 ms of CPU per post.
        checked = self._items.setdefault(key, checked)
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)
        return checked


def _check_off_loop(schema: GraphQLSchema, query: str, limits: GraphqlConfig) -> Checked:
    with gc_paused():
        return check_document(schema, query, limits)


def worker_limiter() -> trio.CapacityLimiter:
    """The limiter for GraphQL work run in worker threads (per Trio run)."""
    try:
        return _THREADS.get()
    except LookupError:
        limiter = trio.CapacityLimiter(2)
        _THREADS.set(limiter)
        return limiter


CACHE = DocumentCache()
