"""Depth, complexity and introspection bounds as a graphql-core validation rule.

The measurement must stay linear in the document, whatever it holds: each
fragment is measured once (memoised by name) and its cost reused wherever it
is spread, and the walk stops as soon as a bound is passed. Fragments that
each spread the next one twice expand to 2^n fields; walking the expansion
instead of memoising held the event loop for seconds at n = 20.

Every field counts towards complexity, ``__typename`` and introspection
fields included: a kind of field left uncounted is a kind an attacker can
repeat for free. Introspection stays available (the playground and tooling
need it) but bounded: at most one ``__schema`` and ``MAX_TYPE_LOOKUPS``
``__type`` per operation, in an operation of its own (so the executor can run
it off the event loop, see ``chatto.gql.execute``). Its nesting does not count
towards ``max_depth`` (the standard introspection query is 15 deep through
``ofType``); graphql-core's ``MaxIntrospectionDepthRule`` bounds the nesting
that multiplies results (the fields of the types of fields ...).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
    ValidationContext,
    ValidationRule,
)

MAX_DEPTH = 12
MAX_COMPLEXITY = 500
MAX_SCHEMA_FIELDS = 1
MAX_TYPE_LOOKUPS = 10
INTROSPECTION_ROOTS = frozenset({"__schema", "__type", "__typename"})


@attrs.frozen
class QueryBounds:
    """What one operation may ask for (``[graphql]`` in the config)."""

    max_depth: int = MAX_DEPTH
    max_complexity: int = MAX_COMPLEXITY


@attrs.define
class Cost:
    """Depth and counts of a selection set after expanding its fragments."""

    depth: int = 0
    fields: int = 0
    schemas: int = 0
    types: int = 0

    def add(self, other: Cost, depth_offset: int) -> None:
        self.depth = max(self.depth, other.depth + depth_offset)
        self.fields += other.fields
        self.schemas += other.schemas
        self.types += other.types


class OverLimit(Exception):
    """The operation passed a bound; ``code`` says which (the client's fault)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def only_introspection_roots(node: OperationDefinitionNode) -> bool:
    """Whether every root selection is a ``__schema``, ``__type`` or ``__typename`` field."""
    return all(
        isinstance(s, FieldNode) and s.name.value in INTROSPECTION_ROOTS
        for s in node.selection_set.selections
    )


FragmentLookup = Callable[[str], FragmentDefinitionNode | None]


class Measurer:
    """Measures operations of one document; fragment costs are shared between them.

    ``visits`` counts the selections walked: at most the selections written
    in the document, twice (once outside and once inside introspection).
    """

    def __init__(self, fragments: FragmentLookup, bounds: QueryBounds = QueryBounds()) -> None:
        self._fragments = fragments
        self._bounds = bounds
        self._memo: dict[tuple[str, bool], Cost] = {}
        self._open: set[tuple[str, bool]] = set()
        self.visits = 0

    def operation(self, node: OperationDefinitionNode) -> Cost:
        """The operation's cost; ``OverLimit`` as soon as a bound is passed."""
        cost = self._selections(node.selection_set, introspection=False)
        if (cost.schemas or cost.types) and not only_introspection_roots(node):
            raise OverLimit(
                "INTROSPECTION_LIMIT",
                "introspection (__schema, __type) must be an operation of its own",
            )
        return cost

    def _selections(self, selection_set: SelectionSetNode, introspection: bool) -> Cost:
        total = Cost()
        for sel in selection_set.selections:
            self.visits += 1
            if isinstance(sel, FieldNode):
                total.add(self._field(sel, introspection), 0)
            elif isinstance(sel, InlineFragmentNode):
                total.add(self._selections(sel.selection_set, introspection), 0)
            elif isinstance(sel, FragmentSpreadNode):
                total.add(self._fragment(sel.name.value, introspection), 0)
            self._check(total)
        return total

    def _field(self, node: FieldNode, introspection: bool) -> Cost:
        name = node.name.value
        inner = introspection or name in ("__schema", "__type")
        sub = self._selections(node.selection_set, inner) if node.selection_set else Cost()
        cost = Cost(fields=1, schemas=int(name == "__schema"), types=int(name == "__type"))
        # Inside introspection the depth is not counted (see the module docstring).
        cost.add(sub, 0 if inner else 1)
        if inner:
            cost.depth = 0 if introspection else 1
        return cost

    def _fragment(self, name: str, introspection: bool) -> Cost:
        key = (name, introspection)
        known = self._memo.get(key)
        if known is not None:
            return known
        fragment = self._fragments(name)
        if fragment is None or key in self._open:
            return Cost()  # unknown fragments and cycles are other rules' errors
        self._open.add(key)
        try:
            cost = self._selections(fragment.selection_set, introspection)
        finally:
            self._open.discard(key)
        self._memo[key] = cost
        return cost

    def _check(self, cost: Cost) -> None:
        b = self._bounds
        if cost.depth > b.max_depth:
            raise OverLimit("QUERY_TOO_DEEP", f"query depth exceeds the limit of {b.max_depth}")
        if cost.fields > b.max_complexity:
            raise OverLimit(
                "QUERY_TOO_COMPLEX",
                f"query complexity exceeds the limit of {b.max_complexity} fields",
            )
        if cost.schemas > MAX_SCHEMA_FIELDS or cost.types > MAX_TYPE_LOOKUPS:
            raise OverLimit(
                "INTROSPECTION_LIMIT",
                f"at most {MAX_SCHEMA_FIELDS} __schema and {MAX_TYPE_LOOKUPS} __type "
                "selections per operation",
            )


def limits_rule(bounds: QueryBounds) -> type[ValidationRule]:
    """A validation rule class refusing operations over ``bounds``."""

    class LimitsRule(ValidationRule):
        """Refuses operations over the depth, complexity or introspection bounds."""

        def __init__(self, context: ValidationContext) -> None:
            super().__init__(context)
            self.measurer = Measurer(context.get_fragment, bounds)

        def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
            try:
                self.measurer.operation(node)
            except OverLimit as exc:
                self.report_error(GraphQLError(exc.message, node, extensions={"code": exc.code}))

    return LimitsRule


LimitsRule = limits_rule(QueryBounds())
