"""A MountRequest -> an immutable MountPlan, or one ConfigError listing every problem.

Pure: no I/O, no environment, no logging. The region may be unknown here
(no `region` parameter); the mount layer then finds it and calls `bind_region`, which runs
the checks that need it. Messages keep the Go provider's key phrases so that searches for
its errors still find ours, and never contain a token or a credential.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping

from provider_aws.attributes import POD_NAME, POD_NAMESPACE, POD_UID, SERVICE_ACCOUNT, TOKENS
from provider_aws.errors import ConfigError
from provider_aws.model import (
    AddressPreference,
    MountInput,
    MountPlan,
    ObjectSpec,
    PodInfo,
    SecretText,
    StaticCredentials,
)
from provider_aws.request.memo import ObjectsMemo
from provider_aws.request.objects import (
    DEFAULT_LIMITS,
    Limits,
    ObjectsContext,
    arn_region_problem,
    parse_objects,
    quote,
)
from provider_aws.request.paths import PathError, parse_translation
from provider_aws.request.tokens import TokenError, parse_tokens
from provider_aws.settings import GO_FALSE, GO_TRUE

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "bind_region",
    "parse_mount_request",
    "validate_parameters",
]

# botocore's own check of region names; anything else would fail deep inside a client.
_REGION = re.compile(r"[a-zA-Z0-9](?:[a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?")
_ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _SESSION_TOKEN = "awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken"


@dataclasses.dataclass(frozen=True, slots=True)
class _Parameters:
    objects: tuple[ObjectSpec, ...]
    region: str | None
    failover_region: str | None
    use_pod_identity: bool
    preferred_address: AddressPreference


def _utf8_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogatepass"))


def _region(parameters: Mapping[str, object], key: str, problems: list[str]) -> str | None:
    value = parameters.get(key)
    if not isinstance(value, str) or value == "":
        return None
    if _REGION.fullmatch(value) is None:
        problems.append(f"{key} {quote(value)} is not a valid AWS region name (such as us-east-1)")
        return None
    return value


def _parameters(
    parameters: Mapping[str, object],
    default_mode: int,
    limits: Limits,
    problems: list[str],
    objects_memo: ObjectsMemo | None = None,
) -> _Parameters:
    """Every SecretProviderClass parameter; shared by Mount and `provider-aws validate`."""
    text: dict[str, str] = {}
    for key, value in parameters.items():
        if isinstance(value, str):
            text[key] = value
        elif key != TOKENS:
            problems.append(f"parameter {quote(str(key))} must be a string")
    region = _region(text, "region", problems)
    failover = _region(text, "failoverRegion", problems)
    if region is not None and region == failover:
        problems.append(f"{region}: failover region cannot be the same as the primary region")
    try:
        translation = parse_translation(text.get("pathTranslation", ""))
    except PathError as error:
        problems.append(str(error))
        translation = "_"  # go on with the default, to report the objects' own problems too
    use_pod_identity = False
    flag = text.get("usePodIdentity", "")
    if flag in GO_TRUE:
        use_pod_identity = True
    elif flag and flag not in GO_FALSE:
        problems.append(f'failed to parse usePodIdentity value {quote(flag)}: use "true" or "false"')
    preference = text.get("preferredAddressType", "").lower()
    try:
        address = AddressPreference(preference)
    except ValueError:
        address = AddressPreference.AUTO  # the Go provider falls back to auto for anything else
    context = ObjectsContext(
        translation=translation,
        default_mode=default_mode,
        region=region,
        failover_region=failover,
        limits=limits,
    )
    objects_text = text.get("objects")
    if objects_memo is None:
        objects = parse_objects(objects_text, context, problems)
    else:
        objects = objects_memo.parse(objects_text, context, problems)
    return _Parameters(objects, region, failover, use_pod_identity, address)


def _attributes(request: MountInput, limits: Limits, problems: list[str]) -> dict[str, object]:
    if _utf8_len(request.attributes) > limits.max_parameter_bytes:
        problems.append(f"attributes are larger than {limits.max_parameter_bytes} bytes")
        return {}
    document = request.attributes_json
    if isinstance(document, json.JSONDecodeError):
        # Position only: the attributes carry service account tokens.
        where = f"line {document.lineno}, column {document.colno}"
        problems.append(f"failed to unmarshal attributes: {document.msg} at {where}")
        return {}
    if isinstance(document, ValueError | RecursionError):
        problems.append("failed to unmarshal attributes: a value is too large or too deeply nested")
        return {}
    if not isinstance(document, dict):
        problems.append("failed to unmarshal attributes: they must be a JSON object of strings")
        return {}
    attributes: dict[str, object] = {}
    for key, value in document.items():
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"attribute {quote(key)} is not valid Unicode text")
                continue
        attributes[key] = value
    return attributes


def _permission(raw: str, problems: list[str]) -> int | None:
    """The request's default file mode: the JSON of a Go os.FileMode, e.g. "420" (0644)."""
    if raw.strip() == "":
        problems.append("permission is empty: the driver must send the default file mode")
        return None
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError):
        value = None
    if not isinstance(value, int) or isinstance(value, bool):
        problems.append(
            f"failed to unmarshal file permission {quote(raw)}: expected a decimal number such as 420"
        )
        return None
    if not 0 <= value <= 0o777:
        problems.append(f"permission {value} is not a file mode between 0 and 511 (0777)")
        return None
    return value


def _static_credentials(raw: str, problems: list[str]) -> StaticCredentials | None:
    """nodePublishSecretRef data: `null`, `{}` and "" all mean none. Never quotes a value."""
    if raw.strip() == "":
        return None
    try:
        document = json.loads(raw)
    except (ValueError, RecursionError):
        problems.append("secrets (the nodePublishSecretRef data) are not valid JSON")
        return None
    if document is None:
        return None
    if not isinstance(document, dict):
        problems.append("secrets (the nodePublishSecretRef data) must be a JSON object of strings")
        return None
    values: dict[str, str] = {}
    for key in (_ACCESS_KEY_ID, _SECRET_ACCESS_KEY, _SESSION_TOKEN):
        value = document.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            problems.append(f"nodePublishSecretRef key {key} must be a string")
            continue
        if value:
            values[key] = value
    key_id, secret = values.get(_ACCESS_KEY_ID), values.get(_SECRET_ACCESS_KEY)
    if key_id is not None and secret is not None:
        session = values.get(_SESSION_TOKEN)
        return StaticCredentials(key_id, SecretText(secret), SecretText(session) if session else None)
    if key_id is not None or secret is not None:
        given, missing = (
            (_ACCESS_KEY_ID, _SECRET_ACCESS_KEY)
            if key_id is not None
            else (_SECRET_ACCESS_KEY, _ACCESS_KEY_ID)
        )
        problems.append(f"nodePublishSecretRef has {given} but no {missing}: set both or neither")
    elif _SESSION_TOKEN in values:
        problems.append(
            f"nodePublishSecretRef has {_SESSION_TOKEN} without {_ACCESS_KEY_ID} and {_SECRET_ACCESS_KEY}"
        )
    return None


def _capped(problems: list[str], limits: Limits) -> tuple[str, ...]:
    if len(problems) <= limits.max_problems:
        return tuple(problems)
    hidden = len(problems) - limits.max_problems
    return (*problems[: limits.max_problems], f"... and {hidden} more problems")


def parse_mount_request(
    request: MountInput, *, limits: Limits = DEFAULT_LIMITS, objects_memo: ObjectsMemo | None = None
) -> MountPlan:
    """The plan for one Mount; raises ConfigError listing every problem found.

    `objects_memo` reuses the parse of an `objects` text seen before (the result is the same).
    """
    problems: list[str] = []
    if request.target_path == "":
        problems.append("Missing mount path: the request has an empty target_path")
    mode = _permission(request.permission, problems)
    static = _static_credentials(request.secrets, problems)
    attributes = _attributes(request, limits, problems)
    raw_tokens = attributes.get(TOKENS)
    tokens = None
    if raw_tokens is not None and not isinstance(raw_tokens, str):
        problems.append(f"{TOKENS} must be a string holding JSON")
    else:
        try:
            tokens = parse_tokens(raw_tokens)
        except TokenError as error:
            problems.append(str(error))
    parameters = _parameters(attributes, 0o644 if mode is None else mode, limits, problems, objects_memo)
    if problems or mode is None:
        raise ConfigError(_capped(problems, limits))

    def attribute(key: str) -> str:
        value = attributes.get(key, "")
        return value if isinstance(value, str) else ""

    pod = PodInfo(
        namespace=attribute(POD_NAMESPACE),
        name=attribute(POD_NAME),
        uid=attribute(POD_UID),
        service_account=attribute(SERVICE_ACCOUNT),
    )
    return MountPlan(
        objects=parameters.objects,
        pod=pod,
        default_mode=mode,
        target_path=request.target_path,
        region=parameters.region,
        failover_region=parameters.failover_region,
        use_pod_identity=parameters.use_pod_identity,
        preferred_address=parameters.preferred_address,
        tokens=tokens,
        static_credentials=static,
        current_versions=tuple(request.current_versions),
    )


def bind_region(plan: MountPlan, region: str) -> MountPlan:
    """`plan` with its primary region set, after the checks that need it; raises ConfigError."""
    if plan.region is not None:
        if plan.region == region:
            return plan
        raise ConfigError([f"the plan already uses region {plan.region}; it cannot move to {quote(region)}"])
    problems: list[str] = []
    if _REGION.fullmatch(region) is None:
        problems.append(
            f"failed to retrieve region: {quote(region)} is not a valid AWS region name (such as us-east-1)"
        )
    elif region == plan.failover_region:
        problems.append(f"{region}: failover region cannot be the same as the primary region")
    else:
        for index, spec in enumerate(plan.objects):
            mismatch = arn_region_problem(spec.primary.name, region)
            if mismatch is not None:
                problems.append(f"objects[{index}] (objectName {quote(spec.primary.name)}): {mismatch}")
    if problems:
        raise ConfigError(problems)
    return dataclasses.replace(plan, region=region)


def validate_parameters(
    parameters: Mapping[str, str], *, default_mode: int = 0o644, limits: Limits = DEFAULT_LIMITS
) -> tuple[str, ...]:
    """Every problem an offline check of SecretProviderClass parameters can find; () when valid."""
    problems: list[str] = []
    if not 0 <= default_mode <= 0o777:
        problems.append(f"default file mode {default_mode:o} is not between 0 and 0777")
        default_mode = 0o644
    _parameters(parameters, default_mode, limits, problems)
    return _capped(problems, limits)
