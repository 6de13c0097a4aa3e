"""All objects of a plan, from the primary region and, after a retriable failure, the failover one.

On a rotation poll (a Mount with the versions mounted before) Secrets Manager objects are
checked first and unchanged values come from the value cache; only the rest is fetched.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import structlog

from provider_aws.aws.batchpolicy import BatchPolicy
from provider_aws.aws.caller import AwsCaller, Credentials
from provider_aws.aws.errors import AwsCallError, to_provider_error
from provider_aws.aws.region import RegionCall, RegionOutcome
from provider_aws.aws.rotation import Rotation
from provider_aws.aws.secretsmanager import fetch_secrets
from provider_aws.aws.sharing import SharedCalls
from provider_aws.aws.ssm import fetch_parameters
from provider_aws.concurrency import run_all
from provider_aws.errors import UnavailableError
from provider_aws.model import FetchedObject, ObjectSpec, ObjectType

__all__ = ["Fetcher"]

log = structlog.get_logger(__name__)

CredentialsFor = Callable[[str], Awaitable[Credentials]]


def _all_regions_failed(pending: list[tuple[ObjectSpec, AwsCallError]], regions: tuple[str, ...]) -> str:
    secrets = [spec for spec, _ in pending if spec.object_type is ObjectType.SECRETS_MANAGER]
    where = ", ".join(regions)
    parts = []
    if secrets:
        parts.append("Failed to fetch secret from all regions")
    if len(secrets) < len(pending):
        parts.append("Failed to fetch parameters from all regions")
    detail = "; ".join(f'"{spec.object_name}": {error.code}' for spec, error in pending)
    return f"{' / '.join(parts)} ({where}): {detail}. AWS may be unavailable; the driver will retry"


@dataclass
class Fetcher:
    clients: AwsCaller
    # When a BatchGetSecretValue is worth its quota; its back-off state per identity and region.
    batching: BatchPolicy
    # Every AWS call goes through it; a window of 0 shares nothing but still counts.
    shared: SharedCalls
    # The change check and value cache of polls.
    rotation: Rotation = field(default_factory=Rotation)

    async def fetch(
        self,
        specs: tuple[ObjectSpec, ...],
        regions: tuple[str, ...],
        credentials_for: CredentialsFor,
        *,
        current_versions: tuple[tuple[str, str], ...] = (),
    ) -> list[FetchedObject]:
        """Every spec's value; raises the first fatal ProviderError, or UNAVAILABLE if no region answered.

        `current_versions` (file name -> mounted version) makes this a rotation poll.
        """
        known: dict[str, Credentials] = {}

        async def credentials(region: str) -> Credentials:
            if region not in known:
                known[region] = await credentials_for(region)
            return known[region]

        poll = bool(current_versions)
        fetched: list[FetchedObject] = []
        pending = list(specs)
        if poll and regions:
            call = self._call(regions[0], 0, await credentials(regions[0]), poll=True)
            fetched, pending = await self.rotation.check(call, pending, dict(current_versions))
            log.debug(
                "rotation check",
                region=regions[0],
                identity=call.credentials.identity,
                from_memory=[item.spec.file_name for item in fetched],
                to_fetch=[spec.file_name for spec in pending],
            )
        failures: list[tuple[ObjectSpec, AwsCallError]] = []
        for index, region in enumerate(regions):
            if not pending:
                break
            if index > 0:
                log.warning(
                    "failing over",
                    region=region,
                    objects=[spec.object_name for spec in pending],
                    causes=sorted({error.code for _, error in failures}),
                )
            call = self._call(region, index, await credentials(region), poll=poll)
            outcome = await self._in_region(pending, call, last=index == len(regions) - 1)
            self.rotation.remember(outcome.fetched, index, known[region].identity)
            fetched.extend(outcome.fetched)
            failures = outcome.retry
            pending = [spec for spec, _ in failures]
        if pending:
            denied = [(spec, error) for spec, error in failures if not error.retriable]
            if denied:  # a denial or a throttle in every region asked: name it, as with one region
                spec, error = denied[0]
                what = "secret" if spec.object_type is ObjectType.SECRETS_MANAGER else "SSM parameter"
                raise to_provider_error(error, f'{what} "{spec.object_name}"', regions[-1])
            raise UnavailableError(_all_regions_failed(failures, regions))
        return fetched

    def _call(self, region: str, index: int, credentials: Credentials, *, poll: bool) -> RegionCall:
        def fallback(reason: str) -> None:
            log.warning("batch fallback", region=region, identity=credentials.identity, reason=reason)

        return RegionCall(self.clients, credentials, region, index, fallback, self.shared, poll)

    async def _in_region(self, specs: list[ObjectSpec], call: RegionCall, *, last: bool) -> RegionOutcome:
        secrets = [s for s in specs if s.object_type is ObjectType.SECRETS_MANAGER]
        parameters = [s for s in specs if s.object_type is ObjectType.SSM_PARAMETER]
        jobs = []
        if secrets:
            jobs.append(fetch_secrets(call, secrets, self.batching, last_region=last))
        if parameters:
            jobs.append(fetch_parameters(call, parameters))
        outcome = RegionOutcome()
        for part in await run_all(jobs):
            outcome.extend(part)
        return outcome
