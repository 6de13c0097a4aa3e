"""Rotation polls made cheap: the change check that decides which version a poll serves.

A poll is a Mount that carries the versions the driver mounted before. For each Secrets
Manager object the version to serve is decided as the Go provider does (a pin equal to the
mounted version is current; otherwise DescribeSecret names the VersionId holding the wanted
label), and a value already fetched for that identity and version is served from memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from provider_aws.aws.calls import DESCRIBE, RegionCall, RotationStats, group_by_ref
from provider_aws.aws.clients import AwsCallError
from provider_aws.aws.errors import to_provider_error
from provider_aws.aws.valuecache import ValueCache, ValueKey
from provider_aws.concurrency import run_all
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, ObjectType

__all__ = ["CURRENT_LABEL", "check_secrets"]

CURRENT_LABEL = "AWSCURRENT"


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
