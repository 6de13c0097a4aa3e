"""The per-region call seam: what a backend needs to call AWS in one region, and the sharing of
identical calls of one identity (in flight, or within the coalescing window for polls).

Every answer is cut down, as it arrives, to the fields the backends read (`reduced`): botocore's
response also carries headers, metadata and a datetime with a time-zone object per timestamp, and
an answer shared with later polls holds secret values, so it must hold nothing more.

The region loop and failover live in `fetch.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider_aws.aws.clients import AwsCaller, AwsCallError, Credentials
from provider_aws.cache import SingleFlight, WindowCache
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec

__all__ = [
    "DESCRIBE",
    "READ_FIELDS",
    "RegionCall",
    "RegionOutcome",
    "RotationStats",
    "SharedCalls",
    "group_by_ref",
    "reduced",
]

DESCRIBE = "describe_secret"
# Recent answers kept for the coalescing window; each expires after the window anyway.
RECENT_ENTRIES = 1024

_SECRET = ("ARN", "Name", "VersionId", "SecretString", "SecretBinary")
# Per operation: top-level fields kept, and for list fields the fields kept of each item.
# An operation not named here is passed through whole (and nothing reads such an answer later).
READ_FIELDS: dict[str, dict[str, tuple[str, ...] | None]] = {
    DESCRIBE: {"VersionIdsToStages": None},
    "get_secret_value": dict.fromkeys(_SECRET),
    "batch_get_secret_value": {"SecretValues": _SECRET, "Errors": ("SecretId", "ErrorCode", "Message")},
    "get_parameters": {"Parameters": ("Name", "ARN", "Value", "Version"), "InvalidParameters": None},
}

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

        def send() -> Awaitable[dict[str, Any]]:
            return self.clients.call(service, self.region, self.credentials, operation, **params)

        where = (self.credentials.identity, service, self.region)
        return await self.shared.call(where, operation, params, send, reuse_recent=self.reuse_recent)


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


def reduced(operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` with only the fields `READ_FIELDS` names for `operation`."""
    fields = READ_FIELDS.get(operation)
    if fields is None:
        return answer
    kept: dict[str, Any] = {}
    for name, item_fields in fields.items():
        if name not in answer:
            continue
        value = answer[name]
        if item_fields is not None:
            value = [{k: item[k] for k in item_fields if k in item} for item in value or ()]
        kept[name] = value
    return kept


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
        reuse_recent: bool,
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
        if reuse_recent:
            recent = self._recent.get(key)
            if recent is not None:
                self.stats.coalesced += 1
                return recent
        ran = False

        async def run() -> dict[str, Any]:
            nonlocal ran
            ran = True
            answer = await fetch()
            if reuse_recent:
                self._recent.put(key, answer)
            return answer

        answer = await self._flight.run(key, run)
        if not ran:
            self.stats.coalesced += 1
        return answer

    async def close(self) -> None:
        await self._flight.close()
        self._recent.clear()
