"""The graphql-core gather shim: Trio semantics match asyncio's gather_with_cancel."""

from __future__ import annotations

import asyncio

import pytest
import trio
from graphql import build_schema, graphql
from graphql.execution import executor

from chatto.gql import trio_shim


async def test_results_in_order_and_concurrent(autojump_clock: trio.abc.Clock) -> None:
    async def slow(value: int, delay: float) -> int:
        await trio.sleep(delay)
        return value

    start = trio.current_time()
    with trio.fail_after(5):
        out = await trio_shim.gather_with_cancel(slow(1, 0.2), slow(2, 0.1), slow(3, 0.0))
    assert out == [1, 2, 3]
    # Virtual time: concurrent siblings take the longest delay, not the sum.
    assert trio.current_time() - start == pytest.approx(0.2)


async def test_first_failure_cancels_siblings_and_is_raised_as_itself() -> None:
    cancelled = []

    async def fail() -> None:
        await trio.sleep(0.01)
        raise ValueError("first")

    async def hang() -> None:
        try:
            await trio.sleep(10)
        except trio.Cancelled:
            cancelled.append(True)
            raise

    with trio.fail_after(5), pytest.raises(ValueError, match="first"):
        await trio_shim.gather_with_cancel(fail(), hang(), hang())
    assert cancelled == [True, True]


def test_asyncio_path_still_uses_the_original() -> None:
    trio_shim.install()

    async def main() -> list[int]:
        async def one() -> int:
            await asyncio.sleep(0)
            return 1

        return await executor.gather_with_cancel(one(), one())

    assert asyncio.run(main()) == [1, 1]


async def test_graphql_core_executes_async_siblings_under_trio() -> None:
    trio_shim.install()
    assert trio_shim.installed()
    schema = build_schema("type Query { a: Int b: Int c: Int }")

    async def resolve(value: int) -> int:
        await trio.sleep(0.01)
        return value

    root = {
        "a": lambda _info: resolve(1),
        "b": lambda _info: resolve(2),
        "c": lambda _info: resolve(3),
    }
    with trio.fail_after(5):
        result = await graphql(schema, "{ a b c }", root_value=root)
    assert result.errors is None
    assert result.data == {"a": 1, "b": 2, "c": 3}
