"""SSM Parameter Store: GetParameters, up to 10 names a call, with decryption.

A pinned parameter is asked for as `name:version` or `name:label`. A batch never holds the same
parameter twice, so every answer maps back to exactly one request by its name, compared as SSM
compares names: at the root, "/name" and "name" are one parameter, answered under the name it was
created with.
"""

from __future__ import annotations

from typing import Any

from provider_aws.aws.errors import AwsCallError, to_provider_error
from provider_aws.aws.region import RegionCall, RegionOutcome, group_by_ref
from provider_aws.concurrency import run_all
from provider_aws.errors import NotFoundError
from provider_aws.model import FetchedObject, ObjectRef, ObjectSpec, SecretBytes

__all__ = ["BATCH_SIZE", "fetch_parameters", "parameter_key", "plan_batches"]

SERVICE = "ssm"
BATCH_SIZE = 10


def parameter_key(name: str) -> str:
    """The parameter a name denotes: a root-level name without its leading "/" (SSM's own rule, as moto
    and LocalStack model it, so that "/name" and "name" match each other); hierarchical names and ARNs
    unchanged. Safe either way: were the two distinct parameters, they would still go in separate
    batches and each answer would still match its own request."""
    bare = name.removeprefix("/")
    return name if "/" in bare else bare


def plan_batches(refs: list[ObjectRef]) -> list[list[ObjectRef]]:
    """As few chunks of at most BATCH_SIZE refs as possible, no parameter twice in a chunk."""
    by_name: dict[str, list[ObjectRef]] = {}
    for ref in refs:
        by_name.setdefault(parameter_key(ref.name), []).append(ref)
    if not by_name:
        return []
    count = max(-(-len(refs) // BATCH_SIZE), *(len(group) for group in by_name.values()))
    batches: list[list[ObjectRef]] = [[] for _ in range(count)]
    for group in sorted(by_name.values(), key=len, reverse=True):
        used: set[int] = set()
        for ref in group:
            free = [i for i in range(len(batches)) if i not in used and len(batches[i]) < BATCH_SIZE]
            if not free:
                batches.append([])
                free = [len(batches) - 1]
            home = min(free, key=lambda i: len(batches[i]))
            batches[home].append(ref)
            used.add(home)
    return [batch for batch in batches if batch]


def _keys(parameter: dict[str, Any]) -> set[str]:
    keys = {parameter_key(str(parameter.get("Name") or ""))}
    if parameter.get("ARN"):
        keys.add(str(parameter["ARN"]))
    return keys


async def _get_batch(
    call: RegionCall, batch: list[ObjectRef], groups: dict[ObjectRef, list[ObjectSpec]]
) -> RegionOutcome:
    selectors = [ref.ssm_selector for ref in batch]
    try:
        answer = await call.request(SERVICE, "get_parameters", Names=selectors, WithDecryption=True)
    except AwsCallError as error:
        if error.fails_over:
            return RegionOutcome(retry=[(spec, error) for ref in batch for spec in groups[ref]])
        names = ", ".join(f'"{name}"' for name in selectors)
        raise to_provider_error(error, f"SSM parameters {names}", call.region) from None

    invalid = [str(name) for name in answer.get("InvalidParameters") or []]
    if invalid:
        names = ", ".join(f'"{name}"' for name in invalid)
        raise NotFoundError(
            f"Invalid parameters: {names} in region {call.region}: the SSM parameter, version or label "
            "does not exist; check objectName, objectVersion and objectVersionLabel"
        )
    parameters = list(answer.get("Parameters") or [])
    outcome = RegionOutcome()
    for ref in batch:
        found = next((p for p in parameters if parameter_key(ref.name) in _keys(p)), None)
        if found is None:
            raise NotFoundError(
                f'SSM parameter "{ref.ssm_selector}" in region {call.region} was not returned'
            )
        value = SecretBytes(str(found.get("Value") or "").encode("utf-8"))
        version = str(found.get("Version") or "")
        outcome.fetched.extend(FetchedObject(spec, value, version, call.region) for spec in groups[ref])
    return outcome


async def fetch_parameters(call: RegionCall, specs: list[ObjectSpec]) -> RegionOutcome:
    """Fetch every spec in `call.region`, all batches at once; fatal errors raise."""
    groups = group_by_ref(specs, call.region_index)
    outcome = RegionOutcome()
    for part in await run_all(_get_batch(call, batch, groups) for batch in plan_batches(list(groups))):
        outcome.extend(part)
    return outcome
