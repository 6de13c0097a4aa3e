"""Fetching objects from one AWS region; the region loop and failover live in `fetch.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from provider_aws.awsclients import AwsCallError, AwsClients, Credentials
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec

if TYPE_CHECKING:
    from provider_aws.rotation import SharedCalls

__all__ = ["RegionCall", "RegionOutcome", "group_by_ref"]


@dataclass(frozen=True, slots=True)
class RegionCall:
    """Everything a backend needs to make its calls in one region."""

    clients: AwsClients
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
