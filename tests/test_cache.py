from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable

import pytest

from provider_aws.cache import CachingLoader, SingleFlight, TtlCache, WindowCache
from testkit.clock import FakeClock


def test_entries_expire_after_their_ttl() -> None:
    clock = FakeClock()
    cache: TtlCache[str, int] = TtlCache(10, clock)
    cache.put("a", 1, ttl=5)
    clock.now += 4.9
    assert cache.get("a") == 1
    clock.now += 0.1
    assert cache.get("a") is None
    assert len(cache) == 0


def test_least_recently_used_goes_first() -> None:
    cache: TtlCache[str, int] = TtlCache(2, FakeClock())
    cache.put("a", 1, ttl=60)
    cache.put("b", 2, ttl=60)
    assert cache.get("a") == 1  # "b" is now the least recently used
    cache.put("c", 3, ttl=60)
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)
    assert len(cache) == 2


@pytest.mark.parametrize(("size", "ttl"), [(0, 60.0), (5, 0.0), (5, -1.0)])
def test_size_zero_or_no_ttl_keeps_nothing(size: int, ttl: float) -> None:
    cache: TtlCache[str, int] = TtlCache(size, FakeClock())
    cache.put("a", 1, ttl=ttl)
    assert cache.get("a") is None
    assert len(cache) == 0


@pytest.mark.asyncio
async def test_single_flight_runs_one_call_for_concurrent_callers() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0
    release = asyncio.Event()

    async def call() -> int:
        nonlocal calls
        calls += 1
        await release.wait()
        return 42

    waiters = [asyncio.create_task(flight.run("k", call)) for _ in range(50)]
    await asyncio.sleep(0)
    release.set()
    results = await asyncio.wait_for(asyncio.gather(*waiters), timeout=5)
    assert results == [42] * 50
    assert calls == 1
    assert len(flight) == 0


@pytest.mark.asyncio
async def test_single_flight_shares_a_failure_then_tries_again() -> None:
    flight: SingleFlight[str, int] = SingleFlight()
    calls = 0

    async def failing() -> int:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0)
        raise ValueError("boom")

    results = await asyncio.gather(*(flight.run("k", failing) for _ in range(5)), return_exceptions=True)
    assert all(isinstance(r, ValueError) for r in results)
    assert calls == 1
    with pytest.raises(ValueError):
        await flight.run("k", failing)
    assert calls == 2


@pytest.mark.asyncio
async def test_a_cancelled_caller_does_not_cancel_the_shared_call() -> None:
    flight: SingleFlight[str, str] = SingleFlight()
    release = asyncio.Event()

    async def call() -> str:
        await release.wait()
        return "done"

    first = asyncio.create_task(flight.run("k", call))
    second = asyncio.create_task(flight.run("k", call))
    await asyncio.sleep(0)
    first.cancel()
    release.set()
    assert await asyncio.wait_for(second, timeout=5) == "done"
    assert first.cancelled()


@pytest.mark.asyncio
async def test_caching_loader_loads_once_and_reuses_until_expiry() -> None:
    clock = FakeClock()
    loader: CachingLoader[str, str] = CachingLoader(8, clock)
    loads = 0

    async def load() -> tuple[str, float]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        return f"v{loads}", 30.0

    values = await asyncio.gather(*(loader.get("k", load) for _ in range(20)))
    assert set(values) == {"v1"}
    clock.now += 29
    assert await loader.get("k", load) == "v1"
    clock.now += 1
    assert await loader.get("k", load) == "v2"
    assert loads == 2


@pytest.mark.asyncio
async def test_caching_loader_with_size_zero_still_coalesces() -> None:
    loader: CachingLoader[str, int] = CachingLoader(0, FakeClock())
    loads = 0

    async def load() -> tuple[int, float]:
        nonlocal loads
        loads += 1
        await asyncio.sleep(0)
        return loads, 60.0

    assert set(await asyncio.gather(*(loader.get("k", load) for _ in range(10)))) == {1}
    assert await loader.get("k", load) == 2
    assert loads == 2


@pytest.mark.asyncio
async def test_loader_reports_hits_and_joined_calls() -> None:
    counts = {"hit": 0, "join": 0}

    def bump(name: str) -> Callable[[], None]:
        def add() -> None:
            counts[name] += 1

        return add

    loader: CachingLoader[str, int] = CachingLoader(8, on_hit=bump("hit"), on_join=bump("join"))
    release = asyncio.Event()
    loads = 0

    async def load() -> tuple[int, float]:
        nonlocal loads
        loads += 1
        await release.wait()
        return 7, 60.0

    waiting = [asyncio.create_task(loader.get("k", load)) for _ in range(5)]
    await asyncio.sleep(0)
    release.set()
    async with asyncio.timeout(5):
        assert await asyncio.gather(*waiting) == [7] * 5
    assert await loader.get("k", load) == 7
    assert (loads, counts["join"], counts["hit"]) == (1, 4, 1)


class Held:
    """A value the tests can hold weakly, to see when the cache lets go of it."""


@pytest.mark.asyncio
async def test_window_cache_releases_a_replaced_value_at_once_and_the_rest_when_the_window_ends() -> None:
    cache: WindowCache[str, Held] = WindowCache(0.05, 10)
    first, second = Held(), Held()
    gone_first, gone_second = weakref.ref(first), weakref.ref(second)
    cache.put("a", first)
    cache.put("a", second)
    del first, second
    assert gone_first() is None  # replaced: released by reference counting, no collection needed
    assert cache.get("a") is gone_second() and len(cache) == 1
    async with asyncio.timeout(5):
        while len(cache):  # noqa: ASYNC110 - the cache has no event to wait for: the loop's timer empties it
            await asyncio.sleep(0.01)
    assert gone_second() is None


@pytest.mark.asyncio
async def test_window_cache_is_bounded_and_forms_no_cycle_with_its_timer() -> None:
    clock = FakeClock()
    cache: WindowCache[int, Held] = WindowCache(60, 2, clock)
    values = [Held() for _ in range(3)]
    for key, value in enumerate(values):
        cache.put(key, value)
    assert (cache.get(0), cache.get(1), cache.get(2)) == (None, values[1], values[2])
    clock.now += 60
    assert cache.get(2) is None  # past its deadline even before the timer ran
    gone = weakref.ref(cache)
    held = [weakref.ref(value) for value in values]
    del values, value
    gc.disable()
    try:
        del cache
        # The pending timer holds the cache weakly: it and its values go without a collection.
        assert gone() is None
        assert [ref() for ref in held] == [None, None, None]
    finally:
        gc.enable()


def test_window_cache_with_no_window_or_room_keeps_nothing() -> None:
    for cache in (WindowCache[str, int](0, 10), WindowCache[str, int](5, 0)):
        cache.put("a", 1)
        assert cache.get("a") is None and len(cache) == 0
