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

The fast lane (``FastLane``, on the lean WebSocket path): a live operation
publishes, through a context variable, how to push a result text to its
socket, and ``SharedStream`` how to render an event synchronously; the
live source (``gql/live_fast.py``) joins the two into the hub subscriber's
``fast`` hook. A shareable event is then rendered once, in the publisher's
call (with ``RequestContext.sync_only``: a resolver that would wait makes
the event take the usual path), and written to every parked subscriber's
socket without waking its task. Only documents whose resolvers are all
synchronous (or know ``sync_only``) are rendered there (``sync_capable``).
"""

from __future__ import annotations

import inspect
import json
import logging
from collections import OrderedDict
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from contextlib import aclosing
from typing import Any, cast

from graphql import (
    DocumentNode,
    ExecutionResult,
    FieldNode,
    GraphQLError,
    GraphQLSchema,
    TypeInfo,
    TypeInfoVisitor,
    Visitor,
    visit,
)
from graphql.execution import Executor, create_source_event_stream, execute_subscription_event

from chatto.gql.acyclic import AcyclicExecutor
from chatto.gql.context import SHARE, RequestContext
from chatto.gql.execute import Operation, format_result
from chatto.gql.live_fast import FAST_LANE
from chatto.gql.schema import format_error

log = logging.getLogger(__name__)


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


class _AsyncFields(Visitor):
    """Finds a selected field whose resolver is a coroutine function."""

    def __init__(self, type_info: TypeInfo) -> None:
        super().__init__()
        self.type_info = type_info
        self.found = False

    def enter_field(self, _node: FieldNode, *_args: Any) -> None:
        field = self.type_info.get_field_def()
        resolve = getattr(field, "resolve", None)
        while resolve is not None and hasattr(resolve, "__wrapped__"):
            resolve = resolve.__wrapped__
        if resolve is not None and inspect.iscoroutinefunction(resolve):
            self.found = True


def sync_capable(schema: GraphQLSchema, document: DocumentNode) -> bool:
    """Whether every field the document selects resolves without a coroutine function."""
    type_info = TypeInfo(schema)
    finder = _AsyncFields(type_info)
    visit(document, TypeInfoVisitor(type_info, finder))
    return not finder.found


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
    fast = sync_capable(schema, op.document)
    return SharedStream(executor, cast(AsyncIterable[Any], stream), ctx, shared, key, fast).run()


class SharedStream:
    """One subscription's results: shared texts where the viewer cannot matter."""

    def __init__(
        self,
        executor: Executor[Any],
        source: AsyncIterable[Any],
        ctx: RequestContext,
        shared: SharedResults,
        key: str,
        sync_capable: bool,
    ) -> None:
        self._executor = executor
        self._source = source
        self._ctx = ctx
        self._shared = shared
        self._key = key
        self._document = executor.operation  # one node per cached document
        self._sync_capable = sync_capable

    def text_for(self, event: object) -> str | None:
        """The shared text already rendered for ``event``, if any."""
        if not self._ctx.is_authenticated():
            return None
        return self._shared.get(self._document, self._key, event)

    def render_now(self, payload: dict[str, Any]) -> str | None:
        """Render a shareable event without waiting, and share it; None if it cannot be."""
        event = payload.get(SHARE)
        ctx = self._ctx
        if event is None or not self._sync_capable or not ctx.is_authenticated():
            return None
        reads = ctx.auth_reads
        ctx.sync_only = True
        try:
            result = execute_subscription_event(self._executor.build_per_event_executor(payload))
        finally:
            ctx.sync_only = False
        if self._executor.is_awaitable(result):
            # ``sync_capable`` missed a resolver that returns an awaitable:
            # run it on the usual path from now on.
            self._sync_capable = False
            log.warning("live document rendered asynchronously; fast lane off for it")
            close = getattr(result, "close", None)
            if close is not None:
                close()
            return None
        result = cast(ExecutionResult, result)
        if result.errors or ctx.auth_reads != reads:
            return None
        text = json.dumps(format_result(result))
        self._shared.put(self._document, self._key, event, text)
        return text

    async def run(self) -> AsyncGenerator[str, None]:
        """JSON payload texts, one per event of the source."""
        lane = FAST_LANE.get()
        if lane is not None:
            lane.stream = self
        source, ctx, shared = self._source, self._ctx, self._shared
        async with aclosing(cast(AsyncIterator[Any], source)):  # type: ignore[type-var]
            async for payload in source:
                event = payload.get(SHARE) if isinstance(payload, dict) else None
                # The per-field authentication gate still holds for every subscriber.
                if event is not None and ctx.is_authenticated():
                    text = shared.get(self._document, self._key, event)
                    if text is not None:
                        yield text
                        continue
                reads = ctx.auth_reads
                result = execute_subscription_event(
                    self._executor.build_per_event_executor(payload)
                )
                if self._executor.is_awaitable(result):
                    result = await result
                result = cast(ExecutionResult, result)
                text = json.dumps(format_result(result))
                if event is not None and not result.errors and ctx.auth_reads == reads:
                    shared.put(self._document, self._key, event, text)
                yield text
