"""Rotation polls made cheap: which version a poll serves, and the values kept to serve it.

A poll is a Mount that carries the versions the driver mounted before. For each Secrets
Manager object the version to serve is decided as the Go provider does (a pin equal to the
mounted version is current; otherwise DescribeSecret names the VersionId holding the wanted
label), and a value already fetched for that identity and version is served from memory
(`ValueCache`). `Rotation` owns both, and its counters (`RotationStats`).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from provider_aws.aws.errors import AwsCallError, to_provider_error
from provider_aws.aws.readfields import DESCRIBE
from provider_aws.aws.region import RegionCall, group_by_ref
from provider_aws.cache import Clock
from provider_aws.concurrency import run_all
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, ObjectType, SecretBytes

__all__ = ["CURRENT_LABEL", "ENTRY_OVERHEAD", "Rotation", "RotationStats", "ValueCache", "ValueKey"]

CURRENT_LABEL = "AWSCURRENT"
# Rough bookkeeping cost of one value cache entry (key object, dict slot), counted against the bound.
ENTRY_OVERHEAD = 256


@dataclass(frozen=True, slots=True)
class ValueKey:
    """Who read it, where, under which requested name or ARN, and which VersionId it is."""

    identity: str
    region: str
    name: str
    version_id: str

    def cost(self) -> int:
        return len(self.identity) + len(self.region) + len(self.name) + len(self.version_id) + ENTRY_OVERHEAD


class ValueCache:
    """Secrets Manager values already fetched, so an unchanged secret is served without a re-read.

    Memory only: a map ValueKey -> SecretBytes holding at most `max_bytes`, each value for at most
    `max_age` seconds after AWS returned it (then it is neither served nor kept); either bound at 0
    keeps nothing. Entries stay in the order they were fetched, so the oldest is both the first to
    expire and the first evicted for room. The key holds the identity that fetched the value: a
    value is only ever served to the identity that was allowed to read it.
    """

    def __init__(self, max_bytes: int, *, max_age: float, clock: Clock = time.monotonic) -> None:
        self._max_bytes = max(0, max_bytes) if max_age > 0 else 0
        self._max_age = max_age
        self._clock = clock
        self._entries: OrderedDict[ValueKey, tuple[SecretBytes, float]] = OrderedDict()
        self._bytes = 0

    def __len__(self) -> int:
        self.expire()
        return len(self._entries)

    @property
    def size_bytes(self) -> int:
        self.expire()
        return self._bytes

    @property
    def keeps_values(self) -> bool:
        return self._max_bytes > 0

    def get(self, key: ValueKey) -> SecretBytes | None:
        self.expire()
        entry = self._entries.get(key)
        return entry[0] if entry is not None else None

    def put(self, key: ValueKey, value: SecretBytes) -> None:
        """Keep `value`; one larger than the whole bound is not kept at all."""
        if not key.version_id:
            return
        self.expire()
        self._remove(key)
        cost = key.cost() + len(value)
        if cost > self._max_bytes:
            return
        self._entries[key] = (value, self._clock())
        self._bytes += cost
        while self._bytes > self._max_bytes:
            oldest, (dropped, _) = self._entries.popitem(last=False)
            self._bytes -= oldest.cost() + len(dropped)

    def expire(self) -> float | None:
        """Drop the values older than `max_age`; returns when the oldest left expires (None: empty)."""
        now = self._clock()
        while self._entries:
            key, (value, fetched) = next(iter(self._entries.items()))
            if fetched + self._max_age > now:
                return fetched + self._max_age
            del self._entries[key]
            self._bytes -= key.cost() + len(value)
        return None

    async def expire_continuously(self) -> None:
        """Wake when the oldest value expires and drop it, so that no value outlives `max_age` in
        memory even when no Mount comes; runs until cancelled (nothing to do without a cache)."""
        while self.keeps_values:
            # Empty: anything put from now on expires max_age from now at the earliest.
            due = self.expire() or self._clock() + self._max_age
            await asyncio.sleep(max(0.0, due - self._clock()))

    def _remove(self, key: ValueKey) -> None:
        old = self._entries.pop(key, None)
        if old is not None:
            self._bytes -= key.cost() + len(old[0])

    def clear(self) -> None:
        self._entries.clear()
        self._bytes = 0


@dataclass
class RotationStats:
    """Counters of polls for the metrics layer; only ever incremented."""

    # Secrets Manager objects whose version a poll decided.
    checks: int = 0
    # Of those, objects whose version to serve differs from the mounted one.
    changed: int = 0
    # Checked objects served from the value cache, and those it did not hold.
    value_cache_hits: int = 0
    value_cache_misses: int = 0
    # Mounts that carried the versions mounted before.
    polls: int = 0


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
        if error.fails_over:  # as for a fetch; the plain fetch that follows fails over if it must
            return None
        raise to_provider_error(error, f'secret "{ref.name}"', call.region) from None
    return _label_holder(answer, ref.version_label or CURRENT_LABEL)


@dataclass
class Rotation:
    """The value cache and the change check of polls, with their counters."""

    # Without a value cache (0 bytes) a poll checks versions but always re-fetches.
    values: ValueCache = field(default_factory=lambda: ValueCache(0, max_age=0.0))
    stats: RotationStats = field(default_factory=RotationStats)

    async def check(
        self, call: RegionCall, specs: list[ObjectSpec], mounted: Mapping[str, str]
    ) -> tuple[list[FetchedObject], list[ObjectSpec]]:
        """Split a poll's objects into values served from memory and objects still to fetch.

        Only Secrets Manager objects are checked (SSM versions come with their values). All
        checks run at once; a fatal DescribeSecret failure raises its ProviderError.
        """
        self.stats.polls += 1
        secrets = [spec for spec in specs if spec.object_type is ObjectType.SECRETS_MANAGER]
        to_fetch = [spec for spec in specs if spec.object_type is not ObjectType.SECRETS_MANAGER]
        groups = group_by_ref(secrets, call.region_index)
        stats = self.stats

        async def decide(
            ref: ObjectRef, group: list[ObjectSpec]
        ) -> tuple[list[FetchedObject], list[ObjectSpec]]:
            # A pin needs no call: mounted or not, the pinned version is the one to serve.
            version = await _version_to_serve(call, ref)
            stats.checks += len(group)
            if version is None:
                return [], group
            stats.changed += sum(1 for spec in group if mounted.get(spec.file_name) != version)
            value = self.values.get(ValueKey(call.credentials.identity, call.region, ref.name, version))
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

    def remember(self, fetched: list[FetchedObject], region_index: int, identity: str) -> None:
        """Keep the Secrets Manager values just fetched for later polls of `identity`."""
        for item in fetched:
            if item.spec.object_type is ObjectType.SECRETS_MANAGER:
                name = item.spec.ref_for(region_index).name
                self.values.put(ValueKey(identity, item.region, name, item.version), item.value)
