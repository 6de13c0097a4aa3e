from __future__ import annotations

import asyncio

import pytest

from provider_aws.concurrency import run_all
from provider_aws.errors import NotFoundError


async def task_of(value: int) -> tuple[int, asyncio.Task[object] | None]:
    await asyncio.sleep(0)
    return value, asyncio.current_task()


@pytest.mark.asyncio
async def test_one_awaitable_runs_in_the_callers_task_and_several_in_their_own() -> None:
    caller = asyncio.current_task()
    (alone,) = await run_all([task_of(1)])
    assert alone == (1, caller)
    several = await run_all(task_of(value) for value in (3, 2, 1))
    assert [value for value, _ in several] == [3, 2, 1]
    assert all(task is not caller for _, task in several)
    assert await run_all([]) == []


async def fails(error: Exception) -> None:
    await asyncio.sleep(0)
    raise error


@pytest.mark.asyncio
async def test_a_failure_is_raised_plainly_alone_or_among_others() -> None:
    with pytest.raises(NotFoundError):
        await run_all([fails(NotFoundError("gone"))])
    slow = asyncio.Event()

    async def never() -> None:
        await slow.wait()

    with pytest.raises(NotFoundError):
        async with asyncio.timeout(5):
            await run_all([never(), fails(NotFoundError("gone"))])
