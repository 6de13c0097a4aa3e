"""Identical AWS calls of one identity share one request: in flight, or within the coalescing
window for polls. Every AWS call of a Mount goes through `SharedCalls`, which counts them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from provider_aws.aws.readfields import DESCRIBE, reduced
from provider_aws.cache import SingleFlight, WindowCache

__all__ = ["CallStats", "SharedCalls"]

# Recent answers kept for the coalescing window; each expires after the window anyway.
RECENT_ENTRIES = 1024

_Key = tuple[str, str, str, str, Hashable]


@dataclass
class CallStats:
    """Counters for the metrics layer, of first Mounts and polls alike; only ever incremented."""

    # AWS calls answered by an identical call in flight or finished within the window.
    coalesced: int = 0
    # Value requests (BatchGetSecretValue, GetSecretValue, GetParameters) sent to AWS.
    fetches: int = 0
    # DescribeSecret requests sent to AWS.
    describes: int = 0


def _freeze(value: Any) -> Hashable:
    if isinstance(value, list | tuple):
        return tuple(_freeze(item) for item in value)
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, Hashable):
        return value
    return repr(value)


class SharedCalls:
    """Identical AWS calls of one identity share one request.

    Calls with the same (identity, service, region, operation, parameters) that are in
    flight are joined; for a `poll` an answer that finished less than `window` seconds ago is
    reused as well. A window of 0 turns all sharing off. The key names the identity, never a
    credential.
    """

    def __init__(self, window: float, max_recent: int = RECENT_ENTRIES) -> None:
        self.window = max(0.0, window)
        self.stats = CallStats()
        self._flight: SingleFlight[_Key, dict[str, Any]] = SingleFlight()
        # Answers of polls only: no poll reuses what a first Mount asked within the window.
        self._recent: WindowCache[_Key, dict[str, Any]] = WindowCache(self.window, max_recent)

    @property
    def recent_answers(self) -> int:
        return len(self._recent)

    async def call(
        self,
        where: tuple[str, str, str],
        operation: str,
        params: Mapping[str, Any],
        send: Callable[[], Awaitable[dict[str, Any]]],
        *,
        poll: bool,
    ) -> dict[str, Any]:
        """The answer of `send()`, which sends `operation` with `params` for `where` (identity,
        service, region), or of an identical call it can share."""

        async def fetch() -> dict[str, Any]:
            if operation == DESCRIBE:
                self.stats.describes += 1
            else:
                self.stats.fetches += 1
            return reduced(operation, await send())

        if self.window <= 0:
            return await fetch()
        key: _Key = (*where, operation, _freeze(dict(params)))
        if poll:
            recent = self._recent.get(key)
            if recent is not None:
                self.stats.coalesced += 1
                return recent
        ran = False

        async def run() -> dict[str, Any]:
            nonlocal ran
            ran = True
            answer = await fetch()
            if poll:
                self._recent.put(key, answer)
            return answer

        answer = await self._flight.run(key, run)
        if not ran:
            self.stats.coalesced += 1
        return answer

    async def close(self) -> None:
        await self._flight.close()
        self._recent.clear()
