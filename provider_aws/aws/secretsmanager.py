"""Secrets Manager: BatchGetSecretValue for unpinned secrets, GetSecretValue for pinned ones.

BatchGetSecretValue has a low quota (100 requests/s per region) and needs its own IAM action, so
when it is refused or throttled this falls back to concurrent GetSecretValue calls and remembers
the refusal for that identity and region for a while.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any

from provider_aws.aws.calls import RegionCall, RegionOutcome, group_by_ref
from provider_aws.aws.clients import AwsCallError
from provider_aws.aws.errors import to_provider_error
from provider_aws.concurrency import run_all
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, SecretBytes

__all__ = ["BATCH_SIZE", "BatchRefusals", "fetch_secrets"]

SERVICE = "secretsmanager"
BATCH_SIZE = 20
_RETRIABLE_ITEM_CODES = frozenset({"InternalServiceError", "InternalFailure", "ServiceUnavailable"})


class BatchRefusals:
    """(identity, region) pairs for which BatchGetSecretValue was refused recently; bounded."""

    def __init__(self, ttl: float, max_entries: int = 4096) -> None:
        self._ttl = ttl
        self._max = max_entries
        self._until: OrderedDict[tuple[str, str], float] = OrderedDict()

    def refused(self, identity: str, region: str) -> bool:
        until = self._until.get((identity, region))
        if until is None:
            return False
        if until <= time.monotonic():
            del self._until[(identity, region)]
            return False
        return True

    def remember(self, identity: str, region: str) -> None:
        if self._ttl <= 0:
            return
        self._until[(identity, region)] = time.monotonic() + self._ttl
        self._until.move_to_end((identity, region))
        while len(self._until) > self._max:
            self._until.popitem(last=False)


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
        if error.retriable:
            return RegionOutcome(retry=[(spec, error) for spec in specs])
        raise to_provider_error(error, _describe(ref), call.region) from None
    return RegionOutcome(fetched=_fetched(specs, answer, call.region))


async def _get_each(call: RegionCall, groups: dict[ObjectRef, list[ObjectSpec]]) -> RegionOutcome:
    outcome = RegionOutcome()
    for part in await run_all(_get_one(call, ref, specs) for ref, specs in groups.items()):
        outcome.extend(part)
    return outcome


async def _batch(
    call: RegionCall, groups: dict[ObjectRef, list[ObjectSpec]], refusals: BatchRefusals
) -> RegionOutcome:
    ids = [ref.name for ref in groups]
    try:
        answer = await call.request(SERVICE, "batch_get_secret_value", SecretIdList=ids)
    except AwsCallError as error:
        if error.throttled or error.code in {"AccessDeniedException", "AccessDenied"}:
            refusals.remember(call.credentials.identity, call.region)
            call.on_fallback(f"BatchGetSecretValue refused ({error.code}); using GetSecretValue")
            return await _get_each(call, groups)
        if error.retriable:
            return RegionOutcome(retry=[(spec, error) for specs in groups.values() for spec in specs])
        names = ", ".join(f'"{name}"' for name in ids)
        raise to_provider_error(error, f"secrets {names}", call.region) from None

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
        item_error = AwsCallError(
            SERVICE, "batch_get_secret_value", code, 500 if code in _RETRIABLE_ITEM_CODES else 400, ""
        )
        if item_error.retriable:
            outcome.retry.extend((spec, item_error) for spec in specs)
        else:
            raise to_provider_error(item_error, _describe(ref), call.region)
    if leftover:
        outcome.extend(await _get_each(call, leftover))
    return outcome


async def fetch_secrets(call: RegionCall, specs: list[ObjectSpec], refusals: BatchRefusals) -> RegionOutcome:
    """Fetch every spec in `call.region`: batched, concurrent; fatal errors raise at once."""
    groups = group_by_ref(specs, call.region_index)
    pinned = {ref: group for ref, group in groups.items() if ref.pinned}
    unpinned = [(ref, group) for ref, group in groups.items() if not ref.pinned]
    jobs = [_get_one(call, ref, group) for ref, group in pinned.items()]
    if refusals.refused(call.credentials.identity, call.region):
        jobs.extend(_get_one(call, ref, group) for ref, group in unpinned)
    else:
        for start in range(0, len(unpinned), BATCH_SIZE):
            chunk = dict(unpinned[start : start + BATCH_SIZE])
            # One secret alone goes through GetSecretValue: same cost, a quota 100 times larger.
            if len(chunk) == 1:
                jobs.extend(_get_one(call, ref, group) for ref, group in chunk.items())
            else:
                jobs.append(_batch(call, chunk, refusals))
    outcome = RegionOutcome()
    for part in await run_all(jobs):
        outcome.extend(part)
    return outcome
