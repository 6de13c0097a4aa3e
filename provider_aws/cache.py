"""A bounded LRU cache whose entries expire, one whose entries are dropped when their window ends,
and a coalescer of identical concurrent calls.

All are generic and know nothing about AWS: identities, ServiceAccounts and regions are
cached with them. Neither ever lets an entry outlive its deadline or the size bound.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

__all__ = ["CachingLoader", "SingleFlight", "TtlCache", "WindowCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

Clock = Callable[[], float]


@dataclass(frozen=True, slots=True)
class _Slot(Generic[V]):
    value: V
    expires_at: float


class TtlCache(Generic[K, V]):
    """Least-recently-used entries go first once `max_size` is reached; 0 keeps nothing."""

    def __init__(self, max_size: int, clock: Clock = time.monotonic) -> None:
        self._max_size = max(0, max_size)
        self._clock = clock
        self._slots: OrderedDict[K, _Slot[V]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: K) -> V | None:
        slot = self._slots.get(key)
        if slot is None:
            return None
        if slot.expires_at <= self._clock():
            del self._slots[key]
            return None
        self._slots.move_to_end(key)
        return slot.value

    def put(self, key: K, value: V, ttl: float) -> None:
        """Keep `value` for `ttl` seconds; a ttl of zero or less removes the key instead."""
        if self._max_size == 0 or ttl <= 0:
            self._slots.pop(key, None)
            return
        self._slots[key] = _Slot(value, self._clock() + ttl)
        self._slots.move_to_end(key)
        while len(self._slots) > self._max_size:
            self._slots.popitem(last=False)

    def clear(self) -> None:
        self._slots.clear()


class WindowCache(Generic[K, V]):
    """Entries live `window` seconds from their last `put`, then the event loop drops them.

    For values that must not outlive their use (answers holding secrets): `TtlCache` only forgets
    an entry when it is read or pushed out. Every entry has one deadline, so insertion order is
    deadline order and one timer, set for the oldest, serves them all; a `put` for a key already
    held releases the replaced value at once. The timer holds the cache through a weak reference:
    no cycle keeps a cache, or anything in it, alive for the garbage collector to find.
    Needs a running loop for `put`; at most `max_size` entries, oldest first out.
    """

    def __init__(self, window: float, max_size: int, clock: Clock = time.monotonic) -> None:
        self._window = window
        self._max_size = max(0, max_size)
        self._clock = clock
        self._slots: OrderedDict[K, _Slot[V]] = OrderedDict()
        self._timer: asyncio.TimerHandle | None = None

    def __len__(self) -> int:
        return len(self._slots)

    def get(self, key: K) -> V | None:
        slot = self._slots.get(key)
        if slot is None or slot.expires_at <= self._clock():
            return None
        return slot.value

    def put(self, key: K, value: V) -> None:
        if self._max_size == 0 or self._window <= 0:
            return
        self._slots.pop(key, None)
        self._slots[key] = _Slot(value, self._clock() + self._window)
        while len(self._slots) > self._max_size:
            self._slots.popitem(last=False)
        if self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        oldest = next(iter(self._slots.values()), None)
        if oldest is None:
            return
        loop = asyncio.get_running_loop()
        delay = max(0.0, oldest.expires_at - self._clock())
        self._timer = loop.call_later(delay, _sweep, weakref.ref(self))

    def sweep(self) -> None:
        """Drop every entry whose window has ended; the loop calls this at the oldest deadline."""
        self._timer = None
        now = self._clock()
        while self._slots:
            key, slot = next(iter(self._slots.items()))
            if slot.expires_at > now:
                break
            del self._slots[key]
        self._schedule()

    def clear(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._slots.clear()


def _sweep(ref: weakref.ref[WindowCache[K, V]]) -> None:
    cache = ref()
    if cache is not None:
        cache.sweep()


class SingleFlight(Generic[K, V]):
    """Runs one call per key at a time; callers that arrive meanwhile share its outcome.

    The call runs as its own task, so one caller giving up (cancelled) does not cancel
    it for the others.
    """

    def __init__(self, on_join: Callable[[], None] | None = None) -> None:
        self._running: dict[K, asyncio.Task[V]] = {}
        self._on_join = on_join

    def __len__(self) -> int:
        return len(self._running)

    async def run(self, key: K, call: Callable[[], Awaitable[V]]) -> V:
        task = self._running.get(key)
        if task is None:
            task = asyncio.ensure_future(call())
            self._running[key] = task
            task.add_done_callback(lambda done: self._finished(key, done))
        elif self._on_join is not None:
            self._on_join()
        return await asyncio.shield(task)

    def _finished(self, key: K, task: asyncio.Task[V]) -> None:
        if self._running.get(key) is task:
            del self._running[key]
        if not task.cancelled():
            # Mark the exception retrieved: every caller may have gone away.
            task.exception()

    async def close(self) -> None:
        """Cancel calls still running (at shutdown) and wait for them to end."""
        tasks = list(self._running.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class CachingLoader(Generic[K, V]):
    """`TtlCache` in front of `SingleFlight`: a miss loads once however many ask at once.

    `load` returns the value and how many seconds it may be reused. With `max_size` 0
    nothing is kept, but identical concurrent loads are still coalesced.
    """

    def __init__(
        self,
        max_size: int,
        clock: Clock = time.monotonic,
        *,
        on_hit: Callable[[], None] | None = None,
        on_join: Callable[[], None] | None = None,
    ) -> None:
        self.cache: TtlCache[K, V] = TtlCache(max_size, clock)
        self._flight: SingleFlight[K, V] = SingleFlight(on_join)
        self._on_hit = on_hit

    async def get(self, key: K, load: Callable[[], Awaitable[tuple[V, float]]]) -> V:
        cached = self.cache.get(key)
        if cached is not None:
            if self._on_hit is not None:
                self._on_hit()
            return cached

        async def load_and_keep() -> V:
            value, ttl = await load()
            self.cache.put(key, value, ttl)
            return value

        return await self._flight.run(key, load_and_keep)

    async def close(self) -> None:
        await self._flight.close()
        self.cache.clear()
