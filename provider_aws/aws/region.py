"""One region's share of a Mount: what a backend needs to call AWS there, and what came back.

The region loop and failover live in `fetch.py`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from provider_aws.aws.caller import AwsCaller, Credentials
from provider_aws.aws.errors import AwsCallError
from provider_aws.aws.sharing import SharedCalls
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec

__all__ = ["RegionCall", "RegionOutcome", "group_by_ref"]


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
    poll: bool = False

    async def request(self, service: str, operation: str, **params: Any) -> dict[str, Any]:
        """One AWS call in this region with these credentials; raises AwsCallError."""

        def send() -> Awaitable[dict[str, Any]]:
            return self.clients.call(service, self.region, self.credentials, operation, **params)

        where = (self.credentials.identity, service, self.region)
        return await self.shared.call(where, operation, params, send, poll=self.poll)


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
