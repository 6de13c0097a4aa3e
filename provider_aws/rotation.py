"""Rotation polls made cheap: change checks, cross-pod sharing of identical calls, counters.

A poll is a Mount that carries the versions the driver mounted before. For each Secrets
Manager object the version to serve is decided as the Go provider does (a pin equal to the
mounted version is current; otherwise DescribeSecret names the VersionId holding the wanted
label), and a value already fetched for that identity and version is served from memory.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Hashable, Mapping
from dataclasses import dataclass
from typing import Any

from provider_aws.awsclients import AwsCallError
from provider_aws.backends import RegionCall, group_by_ref
from provider_aws.backends.errors import to_provider_error
from provider_aws.cache import SingleFlight, TtlCache
from provider_aws.concurrency import run_all
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, ObjectType
from provider_aws.valuecache import ValueCache, ValueKey

__all__ = ["CURRENT_LABEL", "RotationStats", "SharedCalls", "check_secrets"]

CURRENT_LABEL = "AWSCURRENT"
DESCRIBE = "describe_secret"
# Recent answers kept for the coalescing window; each expires after the window anyway.
RECENT_ENTRIES = 1024

_Key = tuple[str, str, str, str, Hashable]


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


def _label_holder(answer: Mapping[str, Any], label: str) -> str | None:
    stages = answer.get("VersionIdsToStages") or {}
    for version_id, labels in stages.items():
        if label in (labels or ()):
            return str(version_id)
    return None


async def _version_to_serve(call: RegionCall, ref: ObjectRef) -> str | None:
    """The VersionId the object should be at now; None when only a plain fetch can tell."""
    if ref.version_id is not None:
        return ref.version_id
    try:
        answer = await call.request("secretsmanager", DESCRIBE, SecretId=ref.name)
    except AwsCallError as error:
        if error.retriable:
            return None
        raise to_provider_error(error, f'secret "{ref.name}"', call.region) from None
    return _label_holder(answer, ref.version_label or CURRENT_LABEL)


async def check_secrets(
    call: RegionCall,
    specs: list[ObjectSpec],
    mounted: Mapping[str, str],
    values: ValueCache,
    stats: RotationStats,
) -> tuple[list[FetchedObject], list[ObjectSpec]]:
    """Split a poll's objects into values served from memory and objects still to fetch.

    Only Secrets Manager objects are checked (SSM versions come with their values). All
    checks run at once; a fatal DescribeSecret failure raises its ProviderError.
    """
    secrets = [spec for spec in specs if spec.object_type is ObjectType.SECRETS_MANAGER]
    to_fetch = [spec for spec in specs if spec.object_type is not ObjectType.SECRETS_MANAGER]
    groups = group_by_ref(secrets, call.region_index)

    async def decide(ref: ObjectRef, group: list[ObjectSpec]) -> tuple[list[FetchedObject], list[ObjectSpec]]:
        # A pin needs no call: mounted or not, the pinned version is the one to serve.
        version = await _version_to_serve(call, ref)
        stats.checks += len(group)
        if version is None:
            return [], group
        stats.changed += sum(1 for spec in group if mounted.get(spec.file_name) != version)
        value = values.get(ValueKey(call.credentials.identity, call.region, ref.name, version))
        if value is None:
            stats.value_cache_misses += len(group)
            return [], group
        stats.value_cache_hits += len(group)
        return [FetchedObject(spec, value, version, call.region) for spec in group], []

    served: list[FetchedObject] = []
    for found, missing in await run_all(decide(ref, group) for ref, group in groups.items()):
        served.extend(found)
        to_fetch.extend(missing)
    return served, to_fetch
