"""The per-region call seam: what a backend needs to call AWS in one region, and the sharing of
identical calls of one identity (in flight, or within the coalescing window for polls).

The region loop and failover live in `fetch.py`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider_aws.aws.clients import AwsCaller, AwsCallError, Credentials
from provider_aws.cache import SingleFlight, TtlCache
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec

__all__ = ["DESCRIBE", "RegionCall", "RegionOutcome", "RotationStats", "SharedCalls", "group_by_ref"]

DESCRIBE = "describe_secret"
# Recent answers kept for the coalescing window; each expires after the window anyway.
RECENT_ENTRIES = 1024

_Key = tuple[str, str, str, str, Hashable]


@dataclass(frozen=True, slots=True)
class RegionCall:
    """Everything a backend needs to make its calls in one region."""

    clients: AwsCaller
    credentials: Credentials
    region: str
    region_index: int
    on_fallback: Callable[[str], None]
    # Identical calls of one identity are shared through this.
    shared: SharedCalls
    # A rotation poll: answers shared calls finished within the coalescing window are reused.
    reuse_recent: bool = False

    async def request(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS call in this region with these credentials; raises AwsCallError."""
        return await self.shared.call(self, service, operation, params)


@dataclass(slots=True)
class RegionOutcome:
    fetched: list[FetchedObject] = field(default_factory=list)
    # Objects that failed in a way another region may fix (5xx, network).
    retry: list[tuple[ObjectSpec, AwsCallError]] = field(default_factory=list)

    def extend(self, other: RegionOutcome) -> None:
        self.fetched.extend(other.fetched)
        self.retry.extend(other.retry)


def group_by_ref(specs: list[ObjectSpec], region_index: int) -> dict[ObjectRef, list[ObjectSpec]]:
    """Objects asking for the same thing share one request."""
    groups: dict[ObjectRef, list[ObjectSpec]] = {}
    for spec in specs:
        groups.setdefault(spec.ref_for(region_index), []).append(spec)
    return groups


@dataclass
class RotationStats:
    """Counters for the metrics layer; only ever incremented."""

    # Secrets Manager objects whose version a poll decided.
    checks: int = 0
    # Of those, objects whose version to serve differs from the mounted one.
    changed: int = 0
    # Checked objects served from the value cache, and those it did not hold.
    value_cache_hits: int = 0
    value_cache_misses: int = 0
    # AWS calls answered by an identical call in flight or finished within the window.
    coalesced: int = 0
    # Value requests (BatchGetSecretValue, GetSecretValue, GetParameters) sent to AWS.
    fetches: int = 0
    # DescribeSecret requests sent to AWS.
    describes: int = 0
    # Mounts that carried the versions mounted before.
    polls: int = 0


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
    flight are joined; with `reuse_recent` (a poll) an answer that finished less than
    `window` seconds ago is reused as well. A window of 0 turns all sharing off. The key
    names the identity, never a credential.
    """

    def __init__(self, window: float, stats: RotationStats, max_recent: int = RECENT_ENTRIES) -> None:
        self.window = max(0.0, window)
        self.stats = stats
        self._flight: SingleFlight[_Key, dict[str, Any]] = SingleFlight()
        self._recent: TtlCache[_Key, dict[str, Any]] = TtlCache(max_recent)
        # Answers hold secret values: each is dropped when its window ends, not only when pushed out.
        self._expiries: set[asyncio.TimerHandle] = set()

    @property
    def recent_answers(self) -> int:
        return len(self._recent)

    async def call(
        self, via: RegionCall, service: str, operation: str, params: Mapping[str, Any]
    ) -> dict[str, Any]:
        """`operation` with `params` through `via`'s clients, region and credentials."""

        def send() -> Awaitable[dict[str, Any]]:
            if operation == DESCRIBE:
                self.stats.describes += 1
            else:
                self.stats.fetches += 1
            return via.clients.call(service, via.region, via.credentials, operation, **params)

        if self.window <= 0:
            return await send()
        key: _Key = (via.credentials.identity, service, via.region, operation, _freeze(dict(params)))
        if via.reuse_recent:
            recent = self._recent.get(key)
            if recent is not None:
                self.stats.coalesced += 1
                return recent
        ran = False

        async def run() -> dict[str, Any]:
            nonlocal ran
            ran = True
            answer = await send()
            self._keep(key, answer)
            return answer

        answer = await self._flight.run(key, run)
        if not ran:
            self.stats.coalesced += 1
        return answer

    def _keep(self, key: _Key, answer: dict[str, Any]) -> None:
        self._recent.put(key, answer, self.window)

        def expire() -> None:
            self._expiries.discard(handle)
            self._recent.discard(key, answer)

        handle = asyncio.get_running_loop().call_later(self.window, expire)
        self._expiries.add(handle)

    async def close(self) -> None:
        for handle in self._expiries:
            handle.cancel()
        self._expiries.clear()
        await self._flight.close()
        self._recent.clear()
