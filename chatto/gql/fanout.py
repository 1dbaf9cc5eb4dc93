"""Subscriptions whose per-event results are shared between subscribers.

A room message reaches every member's ``myEvents``; executing the same
document for the same event once per subscriber (and serialising it, and
opening the same body) was the dominant cost of fan-out. Here each event
is executed once per (document, variables) and the JSON text reused by
every other subscriber that received *the same event object* — provided
the execution never asked who the viewer is (``RequestContext.auth_reads``
unchanged). Anything viewer-dependent (``reactions.mine``, ``emails``,
permission checks) is therefore executed per subscriber, as before.

Receiving the event is the authorisation: the hub only routes it to
subscribers allowed to see it, and a shared result is derived from the
event, the document and the variables alone.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterable
from contextlib import aclosing
from typing import Any, cast

from graphql import ExecutionResult, GraphQLError, GraphQLSchema
from graphql.execution import Executor, create_source_event_stream, execute_subscription_event

from chatto.gql.acyclic import AcyclicExecutor
from chatto.gql.context import SHARE, RequestContext
from chatto.gql.execute import Operation, format_result
from chatto.gql.schema import format_error


class SharedResults:
    """A bounded LRU of serialised results by (document, variables, event)."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._items: OrderedDict[tuple[int, str, int], tuple[object, object, str]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def get(self, document: object, variables: str, event: object) -> str | None:
        key = (id(document), variables, id(event))
        hit = self._items.get(key)
        # Ids are reused after collection: the stored objects must be the same ones.
        if hit is None or hit[0] is not document or hit[1] is not event:
            self.misses += 1
            return None
        self.hits += 1
        self._items.move_to_end(key)
        return hit[2]

    def put(self, document: object, variables: str, event: object, text: str) -> None:
        self._items[(id(document), variables, id(event))] = (document, event, text)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


SHARED = SharedResults()


async def subscribe_shared(
    schema: GraphQLSchema, ctx: RequestContext, op: Operation, shared: SharedResults = SHARED
) -> AsyncGenerator[str, None] | list[dict[str, Any]]:
    """Start a subscription (validated by ``prepare``): JSON payload texts, or errors."""
    variables = op.data.get("variables")
    name = op.data.get("operationName")
    if op.errors:
        return [format_error(e) for e in op.errors]
    executor = AcyclicExecutor.build(schema, op.document, None, ctx, variables, name)
    if isinstance(executor, list):
        return [format_error(e) for e in executor]
    try:
        stream = create_source_event_stream(executor)
        if executor.is_awaitable(stream):
            stream = await stream
    except GraphQLError as exc:
        return [format_error(exc)]
    if isinstance(stream, ExecutionResult):
        return [format_error(e) for e in stream.errors or ()]
    key = json.dumps(variables, sort_keys=True) + "\0" + (name or "")
    return _results(executor, cast(AsyncIterable[Any], stream), ctx, shared, key)


async def _results(
    executor: Executor[Any],
    source: AsyncIterable[Any],
    ctx: RequestContext,
    shared: SharedResults,
    key: str,
) -> AsyncGenerator[str, None]:
    document = executor.operation  # one node per cached document
    async with aclosing(source):  # type: ignore[type-var]
        async for payload in source:
            event = payload.get(SHARE) if isinstance(payload, dict) else None
            # The per-field authentication gate still holds for every subscriber.
            if event is not None and ctx.is_authenticated():
                text = shared.get(document, key, event)
                if text is not None:
                    yield text
                    continue
            reads = ctx.auth_reads
            result = execute_subscription_event(executor.build_per_event_executor(payload))
            if executor.is_awaitable(result):
                result = await result
            result = cast(ExecutionResult, result)
            text = json.dumps(format_result(result))
            if event is not None and not result.errors and ctx.auth_reads == reads:
                shared.put(document, key, event, text)
            yield text
