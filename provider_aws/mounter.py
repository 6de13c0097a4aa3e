"""One Mount: request -> plan -> region -> identity -> concurrent fetch -> answer."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from provider_aws.answer import build_result
from provider_aws.aws.caller import Credentials
from provider_aws.aws.fetch import Fetcher
from provider_aws.model import MountInput, MountPlan, MountResult
from provider_aws.request.memo import ObjectsMemo
from provider_aws.request.parse import bind_region, parse_mount_request

__all__ = ["IdentitySource", "Mounter", "RegionSource"]


class IdentitySource(Protocol):
    async def credentials_for(self, plan: MountPlan, region: str) -> Credentials: ...


class RegionSource(Protocol):
    async def region_for(self, plan: MountPlan) -> str: ...


@dataclass
class Mounter:
    fetcher: Fetcher
    identities: IdentitySource
    regions: RegionSource
    objects_memo: ObjectsMemo = field(default_factory=ObjectsMemo)

    async def mount(self, request: MountInput) -> MountResult:
        plan = parse_mount_request(request, objects_memo=self.objects_memo)
        return await self.mount_plan(plan)

    async def mount_plan(self, plan: MountPlan) -> MountResult:
        if plan.region is None:
            plan = bind_region(plan, await self.regions.region_for(plan))

        async def credentials_for(region: str) -> Credentials:
            return await self.identities.credentials_for(plan, region)

        fetched = await self.fetcher.fetch(
            plan.objects, plan.regions, credentials_for, current_versions=plan.current_versions
        )
        return build_result(plan, fetched)
