"""Make graphql-core 3.3 gather sibling async fields with Trio under Trio.

graphql-core's executor awaits sibling fields with ``gather_with_cancel``,
built on ``asyncio.ensure_future``; under Trio that dies with "trio.run
received unrecognized yield message". ``install()`` swaps that one function
(looked up by the executor at call time) for one that uses a Trio nursery
when the current async library is Trio and the original otherwise.
Semantics match the original: results in order; the first exception
cancels the siblings and is re-raised as itself.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sniffio
import trio
from graphql.execution import executor as _executor

_original: Callable[..., Awaitable[list[Any]]] = _executor.gather_with_cancel  # type: ignore[attr-defined]


async def trio_gather_with_cancel(*awaitables: Awaitable[Any]) -> list[Any]:
    """Await all concurrently in a nursery; first failure cancels the rest."""
    results: list[Any] = [None] * len(awaitables)
    failure: list[Exception] = []

    async def run(index: int, aw: Awaitable[Any], scope: trio.CancelScope) -> None:
        try:
            results[index] = await aw
        except Exception as exc:  # collected and re-raised below, as gather does
            if not failure:
                failure.append(exc)
            scope.cancel()

    async with trio.open_nursery() as nursery:
        for i, aw in enumerate(awaitables):
            nursery.start_soon(run, i, aw, nursery.cancel_scope)
    if failure:
        raise failure[0]
    return results


async def gather_with_cancel(*awaitables: Awaitable[Any]) -> list[Any]:
    """Dispatch to the Trio or asyncio implementation by the running library."""
    if sniffio.current_async_library() == "trio":
        return await trio_gather_with_cancel(*awaitables)
    return await _original(*awaitables)


def install() -> None:
    """Idempotently replace graphql-core's gather with the dispatching one."""
    _executor.gather_with_cancel = gather_with_cancel  # type: ignore[attr-defined]


def installed() -> bool:
    return _executor.gather_with_cancel is gather_with_cancel  # type: ignore[attr-defined]
