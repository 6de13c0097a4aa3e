"""Frozen domain types shared by every layer: plan, identity inputs, results."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass, field

__all__ = [
    "REDACTED",
    "AddressPreference",
    "FetchedObject",
    "JmesEntry",
    "MountInput",
    "MountPlan",
    "MountResult",
    "MountedFile",
    "ObjectRef",
    "ObjectSpec",
    "ObjectType",
    "ObjectVersion",
    "PodInfo",
    "SecretBytes",
    "SecretText",
    "StaticCredentials",
]

# What stands in a message, log line or repr where a secret value or credential would be.
REDACTED = "<redacted>"


class SecretBytes:
    """Secret content; its repr never shows the bytes, so it cannot leak into logs."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def __len__(self) -> int:
        return len(self._value)

    def __repr__(self) -> str:
        return f"SecretBytes({REDACTED} {len(self._value)} bytes)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretBytes) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretText:
    """A token or credential string with a redacted repr."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def redact_in(self, text: str) -> str:
        """`text` with this secret cut out, should another party have echoed it back."""
        return text.replace(self._value, REDACTED) if self._value else text

    def __repr__(self) -> str:
        return f"SecretText({REDACTED})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SecretText) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class ObjectType(enum.Enum):
    SECRETS_MANAGER = "secretsmanager"
    SSM_PARAMETER = "ssmparameter"


class AddressPreference(enum.Enum):
    AUTO = "auto"
    IPV4 = "ipv4"
    IPV6 = "ipv6"


@dataclass(frozen=True, slots=True)
class MountInput:
    """The MountRequest's fields, as plain Python values."""

    attributes: str
    secrets: str
    target_path: str
    permission: str
    current_versions: tuple[tuple[str, str], ...] = ()
    # The attributes JSON parsed once, for the request parser and the access line alike: the parsed
    # value, or the error (without its traceback) that parsing raised.
    attributes_json: object = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        try:
            parsed: object = json.loads(self.attributes)
        except (ValueError, RecursionError) as error:
            parsed = error.with_traceback(None)
        object.__setattr__(self, "attributes_json", parsed)


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """What to ask AWS for in one region: a name (or ARN) and an optional pin."""

    name: str
    version_id: str | None = None
    version_label: str | None = None

    @property
    def pinned(self) -> bool:
        return self.version_id is not None or self.version_label is not None

    @property
    def ssm_selector(self) -> str:
        """SSM's `name:version` / `name:label` form of a pinned parameter."""
        pin = self.version_id if self.version_id is not None else self.version_label
        return self.name if pin is None else f"{self.name}:{pin}"


@dataclass(frozen=True, slots=True)
class JmesEntry:
    path: str
    file_name: str
    mode: int


@dataclass(frozen=True, slots=True)
class ObjectSpec:
    """One entry of `objects`, validated, with its final file name and mode."""

    object_type: ObjectType
    primary: ObjectRef
    file_name: str
    mode: int
    alias: str | None = None
    jmes: tuple[JmesEntry, ...] = ()
    failover: ObjectRef | None = None

    @property
    def object_name(self) -> str:
        return self.primary.name

    def ref_for(self, region_index: int) -> ObjectRef:
        """The object to ask for in the primary (0) or failover (1) region."""
        if region_index > 0 and self.failover is not None:
            return self.failover
        return self.primary


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    service_account: str


@dataclass(frozen=True, slots=True)
class StaticCredentials:
    access_key_id: str
    secret_access_key: SecretText
    session_token: SecretText | None = None


@dataclass(frozen=True, slots=True)
class MountPlan:
    """Everything a Mount needs, parsed and validated, before any I/O."""

    objects: tuple[ObjectSpec, ...]
    pod: PodInfo
    default_mode: int
    target_path: str
    region: str | None = None
    failover_region: str | None = None
    use_pod_identity: bool = False
    preferred_address: AddressPreference = AddressPreference.AUTO
    # audience -> token; None when the tokens attribute was absent.
    tokens: tuple[tuple[str, SecretText], ...] | None = None
    static_credentials: StaticCredentials | None = None
    current_versions: tuple[tuple[str, str], ...] = ()

    @property
    def regions(self) -> tuple[str, ...]:
        """Primary then failover; empty while the primary region is still unknown."""
        if self.region is None:
            return ()
        if self.failover_region is None:
            return (self.region,)
        return (self.region, self.failover_region)

    def token_for(self, audience: str) -> SecretText | None:
        for name, token in self.tokens or ():
            if name == audience:
                return token if token else None
        return None


@dataclass(frozen=True, slots=True)
class FetchedObject:
    spec: ObjectSpec
    value: SecretBytes
    version: str
    region: str


@dataclass(frozen=True, slots=True)
class MountedFile:
    path: str
    mode: int
    contents: SecretBytes


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    id: str
    version: str


@dataclass(frozen=True, slots=True)
class MountResult:
    files: tuple[MountedFile, ...]
    versions: tuple[ObjectVersion, ...]
