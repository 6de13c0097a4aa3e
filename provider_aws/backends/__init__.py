"""Fetching objects from one AWS region; the region loop and failover live in `fetch.py`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from provider_aws.awsclients import AwsCallError, AwsClients, Credentials
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec

__all__ = ["RegionCall", "RegionOutcome", "group_by_ref"]


@dataclass(frozen=True, slots=True)
class RegionCall:
    """Everything a backend needs to make its calls in one region."""

    clients: AwsClients
    credentials: Credentials
    region: str
    region_index: int
    on_fallback: Callable[[str], None] = field(default=lambda _reason: None)


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
