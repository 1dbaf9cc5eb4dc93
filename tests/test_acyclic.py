"""GraphQL executions are freed by reference counting, not by the cyclic GC."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator
from contextlib import contextmanager

from graphql import parse
from graphql.execution.incremental.incremental_executor import IncrementalExecutor

from chatto.gql.acyclic import AcyclicExecutor
from chatto.gql.schema import build_schema

QUERY = parse("{ __typename serverInfo { name } }")


@contextmanager
def no_cyclic_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def executed(cls: type[IncrementalExecutor]) -> weakref.ref[IncrementalExecutor]:
    executor = cls.build(build_schema(), QUERY)
    assert not isinstance(executor, list)
    result = executor.execute_operation()
    if executor.is_awaitable(result):
        result = await result
    assert result.data is not None and result.data["__typename"] == "Query"  # type: ignore[union-attr]
    return weakref.ref(executor)


async def test_executor_is_freed_as_soon_as_the_execution_ends() -> None:
    with no_cyclic_gc():
        # graphql-core's own executor keeps itself alive through its helpers...
        assert (await executed(IncrementalExecutor))() is not None
        # ...ours is gone the moment the last reference is.
        assert (await executed(AcyclicExecutor))() is None
