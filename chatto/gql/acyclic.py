"""A graphql-core executor that leaves no reference cycle behind.

graphql-core 3.3's ``Executor`` stores ``async_helpers``, a tuple of its
own bound methods: every execution is a reference cycle (executor, its
collected fields, variable values, the request context, ...), about a
hundred objects that only the cyclic garbage collector can free. Under
load that was ~25k objects a second: 15-30 ms young-generation pauses
every second and a 290 ms full collection (measured with ``gc.callbacks``
in a 200 posts/s load test). Holding the methods weakly breaks the cycle,
so reference counting frees each execution as soon as it is done. The
executor is alive for as long as any resolver can call the helpers: its
own ``execute_operation`` holds it.
"""

from __future__ import annotations

import weakref
from collections.abc import Awaitable, Sequence
from typing import Any

from graphql.execution.incremental.incremental_executor import IncrementalExecutor
from graphql.type.definition import GraphQLResolveInfoHelpers


class AcyclicExecutor(IncrementalExecutor):
    """``IncrementalExecutor`` whose resolver helpers refer to it weakly."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        gather = weakref.WeakMethod(self.gather_async_work)
        track = weakref.WeakMethod(self.track_async_work)

        def gather_async_work(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
            method = gather()
            if method is None:  # pragma: no cover - only after the execution ended
                raise RuntimeError("GraphQL execution already finished")
            return method(values)

        def track_async_work(values: Any) -> None:
            method = track()
            if method is not None:
                method(values)

        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=gather_async_work, track=track_async_work
        )
