"""All objects of a plan, from the primary region and, after a retriable failure, the failover one."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import structlog

from provider_aws.awsclients import AwsCallError, AwsClients, Credentials
from provider_aws.backends import RegionCall, RegionOutcome
from provider_aws.backends.secretsmanager import BatchRefusals, fetch_secrets
from provider_aws.backends.ssm import fetch_parameters
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
    clients: AwsClients
    refusals: BatchRefusals

    async def fetch(
        self, specs: tuple[ObjectSpec, ...], regions: tuple[str, ...], credentials_for: CredentialsFor
    ) -> list[FetchedObject]:
        """Every spec's value; raises the first fatal ProviderError, or UNAVAILABLE if no region answered."""
        fetched: list[FetchedObject] = []
        pending = list(specs)
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
            outcome = await self._in_region(pending, region, index, await credentials_for(region))
            fetched.extend(outcome.fetched)
            failures = outcome.retry
            pending = [spec for spec, _ in failures]
        if pending:
            raise UnavailableError(_all_regions_failed(failures, regions))
        return fetched

    async def _in_region(
        self, specs: list[ObjectSpec], region: str, index: int, credentials: Credentials
    ) -> RegionOutcome:
        def fallback(reason: str) -> None:
            log.warning("batch fallback", region=region, identity=credentials.identity, reason=reason)

        call = RegionCall(self.clients, credentials, region, index, fallback)
        secrets = [s for s in specs if s.object_type is ObjectType.SECRETS_MANAGER]
        parameters = [s for s in specs if s.object_type is ObjectType.SSM_PARAMETER]
        jobs = []
        if secrets:
            jobs.append(fetch_secrets(call, secrets, self.refusals))
        if parameters:
            jobs.append(fetch_parameters(call, parameters))
        outcome = RegionOutcome()
        for part in await run_all(jobs):
            outcome.extend(part)
        return outcome
