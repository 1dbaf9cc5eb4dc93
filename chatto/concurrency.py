"""Small structured-concurrency helpers shared by the shell."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import TypeVar

import trio

T = TypeVar("T")


async def for_each_bounded(
    items: Iterable[T], fn: Callable[[T], Awaitable[None]], limit: int
) -> None:
    """Run ``fn(item)`` for every item, at most ``limit`` at once, in one nursery.

    No more than ``limit`` tasks exist at any moment (the loop waits for a
    slot before starting the next), and the first error cancels the rest.
    """
    slots = trio.Semaphore(limit)

    async def one(item: T) -> None:
        try:
            await fn(item)
        finally:
            slots.release()

    async with trio.open_nursery() as nursery:
        for item in items:
            await slots.acquire()
            nursery.start_soon(one, item)
