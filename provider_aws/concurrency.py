"""Run coroutines concurrently, all or nothing, surfacing the first expected failure plainly."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Iterable
from typing import TypeVar

from provider_aws.errors import ProviderError

__all__ = ["run_all"]

T = TypeVar("T")


def _first(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The first ProviderError in a (nested) group, else its first exception."""
    leaves: list[BaseException] = []
    stack: list[BaseException] = [group]
    while stack:
        current = stack.pop(0)
        if isinstance(current, BaseExceptionGroup):
            stack[0:0] = list(current.exceptions)
        else:
            leaves.append(current)
    for leaf in leaves:
        if isinstance(leaf, ProviderError):
            return leaf
    return leaves[0]


async def run_all(awaitables: Iterable[Awaitable[T]]) -> list[T]:
    """Results in input order; on the first failure the others are cancelled and it is raised.

    A single awaitable is awaited in place: the common case (one backend, one batch) then costs
    no task, group or wrapper, which each Mount in flight would otherwise hold (issue 13).
    """
    items = list(awaitables)
    if len(items) == 1:
        return [await items[0]]

    async def wrap(item: Awaitable[T]) -> T:
        return await item

    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(wrap(item)) for item in items]
    except BaseExceptionGroup as failure:
        raise _first(failure) from None
    return [task.result() for task in tasks]
