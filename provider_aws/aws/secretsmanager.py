"""Secrets Manager: BatchGetSecretValue for unpinned secrets, GetSecretValue for pinned ones.

BatchGetSecretValue has a low quota (100 requests/s per account and region) and needs its own IAM
action. `BatchPolicy` decides when a batch is worth its quota; when one is throttled, refused or
fails, its secrets go through concurrent GetSecretValue calls at once and the policy backs off.
"""

from __future__ import annotations

from typing import Any

from provider_aws.aws.batchpolicy import BatchPolicy
from provider_aws.aws.errors import AwsCallError, item_error, to_provider_error
from provider_aws.aws.region import RegionCall, RegionOutcome, group_by_ref
from provider_aws.concurrency import run_all
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, SecretBytes

__all__ = ["BATCH_SIZE", "fetch_secrets"]

SERVICE = "secretsmanager"
BATCH_SIZE = 20


def _describe(ref: ObjectRef) -> str:
    return f'secret "{ref.name}"'


def _value_of(answer: dict[str, Any]) -> SecretBytes:
    text = answer.get("SecretString")
    if text is not None:
        return SecretBytes(str(text).encode("utf-8"))
    return SecretBytes(bytes(answer.get("SecretBinary") or b""))


def _fetched(specs: list[ObjectSpec], answer: dict[str, Any], region: str) -> list[FetchedObject]:
    value = _value_of(answer)
    version = str(answer.get("VersionId") or "")
    return [FetchedObject(spec, value, version, region) for spec in specs]


def _matches(secret_id: str, answer: dict[str, Any]) -> bool:
    arn = str(answer.get("ARN") or "")
    if secret_id in (arn, answer.get("Name")):
        return True
    # A partial ARN omits the six random characters Secrets Manager appends to the name.
    return secret_id.startswith("arn:") and arn.startswith(secret_id + "-") and len(arn) == len(secret_id) + 7


async def _get_one(call: RegionCall, ref: ObjectRef, specs: list[ObjectSpec]) -> RegionOutcome:
    params: dict[str, str] = {"SecretId": ref.name}
    if ref.version_id is not None:
        params["VersionId"] = ref.version_id
    if ref.version_label is not None:
        params["VersionStage"] = ref.version_label
    try:
        answer = await call.request(SERVICE, "get_secret_value", **params)
    except AwsCallError as error:
        if error.fails_over:
            return RegionOutcome(retry=[(spec, error) for spec in specs])
        raise to_provider_error(error, _describe(ref), call.region) from None
    return RegionOutcome(fetched=_fetched(specs, answer, call.region))


async def _get_each(call: RegionCall, groups: dict[ObjectRef, list[ObjectSpec]]) -> RegionOutcome:
    outcome = RegionOutcome()
    for part in await run_all(_get_one(call, ref, specs) for ref, specs in groups.items()):
        outcome.extend(part)
    return outcome


async def _batch(
    call: RegionCall, groups: dict[ObjectRef, list[ObjectSpec]], policy: BatchPolicy, last_region: bool
) -> RegionOutcome:
    ids = [ref.name for ref in groups]
    identity = call.credentials.identity
    try:
        answer = await call.request(SERVICE, "batch_get_secret_value", SecretIdList=ids)
    except AwsCallError as error:
        if error.refused:
            policy.refused(identity, call.region)
        elif error.throttled or error.retriable:
            # Tried once (botocore does not retry it), and this identity backs off batching here.
            policy.throttled(identity, call.region)
            if error.retriable and not error.throttled and not last_region:
                # The region fails: its secrets go to the failover region at once.
                return RegionOutcome(retry=[(spec, error) for specs in groups.values() for spec in specs])
        else:
            names = ", ".join(f'"{name}"' for name in ids)
            raise to_provider_error(error, f"secrets {names}", call.region) from None
        # Each GetSecretValue carries botocore's retries.
        call.on_fallback(f"BatchGetSecretValue failed ({error.code}); using GetSecretValue")
        return await _get_each(call, groups)
    policy.succeeded(identity, call.region)
    outcome = RegionOutcome()
    leftover: dict[ObjectRef, list[ObjectSpec]] = {}
    values = list(answer.get("SecretValues") or [])
    failures = {str(item.get("SecretId")): item for item in answer.get("Errors") or []}
    for ref, specs in groups.items():
        found = next((value for value in values if _matches(ref.name, value)), None)
        if found is not None:
            outcome.fetched.extend(_fetched(specs, found, call.region))
            continue
        failure = failures.get(ref.name)
        if failure is None:
            leftover[ref] = specs  # not recognisable in the answer: ask for it on its own
            continue
        code = str(failure.get("ErrorCode") or "Unknown")
        failed = item_error(SERVICE, "batch_get_secret_value", code)
        if failed.fails_over:
            outcome.retry.extend((spec, failed) for spec in specs)
        else:
            raise to_provider_error(failed, _describe(ref), call.region)
    if leftover:
        outcome.extend(await _get_each(call, leftover))
    return outcome


async def fetch_secrets(
    call: RegionCall, specs: list[ObjectSpec], policy: BatchPolicy, *, last_region: bool = True
) -> RegionOutcome:
    """Fetch every spec in `call.region`: batched where the policy allows, concurrent; fatal errors raise.

    `last_region` False: a batch that fails on the server side sends its secrets to the next region
    instead of retrying them one by one here."""
    groups = group_by_ref(specs, call.region_index)
    pinned = {ref: group for ref, group in groups.items() if ref.pinned}
    unpinned = [(ref, group) for ref, group in groups.items() if not ref.pinned]
    jobs = [_get_one(call, ref, group) for ref, group in pinned.items()]
    for start in range(0, len(unpinned), BATCH_SIZE):
        chunk = dict(unpinned[start : start + BATCH_SIZE])
        if policy.allow(call.credentials.identity, call.region, len(chunk)):
            jobs.append(_batch(call, chunk, policy, last_region))
        else:
            jobs.extend(_get_one(call, ref, group) for ref, group in chunk.items())
    outcome = RegionOutcome()
    for part in await run_all(jobs):
        outcome.extend(part)
    return outcome
