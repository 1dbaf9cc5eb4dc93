"""Query depth and complexity limits as graphql-core validation rules.

Depth counts nested selections through fragments (introspection fields such
as ``__schema`` are not counted); complexity is the number of field
selections after expanding fragments. Page sizes are capped separately (500
events). A request over a limit fails validation with a clear message.
"""

from __future__ import annotations

from typing import Any

from graphql import (
    FieldNode,
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


def _measure(
    context: ValidationContext, selection_set: SelectionSetNode | None, seen: frozenset[str]
) -> tuple[int, int]:
    """(depth, field count) of a selection set; fragment cycles are not followed."""
    if selection_set is None:
        return 0, 0
    depth, count = 0, 0
    for sel in selection_set.selections:
        if isinstance(sel, FieldNode):
            if sel.name.value.startswith("__"):
                continue  # introspection is excluded
            d, c = _measure(context, sel.selection_set, seen)
            depth, count = max(depth, d + 1), count + c + 1
        elif isinstance(sel, InlineFragmentNode):
            d, c = _measure(context, sel.selection_set, seen)
            depth, count = max(depth, d), count + c
        elif isinstance(sel, FragmentSpreadNode):
            name = sel.name.value
            fragment = context.get_fragment(name)
            if fragment is None or name in seen:
                continue
            d, c = _measure(context, fragment.selection_set, seen | {name})
            depth, count = max(depth, d), count + c
        if count > MAX_COMPLEXITY * 4:
            break  # already far over: stop walking a hostile document
    return depth, count


class LimitsRule(ValidationRule):
    """Rejects operations deeper than 12 or with more than 500 fields."""

    def enter_operation_definition(self, node: OperationDefinitionNode, *_args: Any) -> None:
        depth, count = _measure(self.context, node.selection_set, frozenset())
        if depth > MAX_DEPTH:
            self.report_error(
                GraphQLError(f"query depth {depth} exceeds the limit of {MAX_DEPTH}", node)
            )
        if count > MAX_COMPLEXITY:
            self.report_error(
                GraphQLError(
                    f"query complexity {count} exceeds the limit of {MAX_COMPLEXITY}", node
                )
            )
