"""The `objects` parameter: YAML text -> validated ObjectSpecs with final file names and modes.

Pure: no I/O, no logging. Every problem is appended to the caller's list, each naming the
object it belongs to, so that one ConfigError can report them all. The rules are those of
the Go provider (README: "Object fields"); where it accepted something that cannot work
(a file name that collides with another, a mode the driver refuses, an ARN of an unknown
service next to an explicit objectType) we refuse it here, at parse time.
"""

from __future__ import annotations

import datetime
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import jmespath
import yaml
from jmespath.exceptions import JMESPathError
from jmespath.functions import Functions

from provider_aws.model import JmesEntry, ObjectRef, ObjectSpec, ObjectType
from provider_aws.request.paths import PathError, file_name, find_conflicts

__all__ = [
    "DEFAULT_LIMITS",
    "Limits",
    "ObjectsContext",
    "arn_region_problem",
    "parse_objects",
    "quote",
]

try:  # libyaml is much faster on large documents; the pure-Python loader behaves the same.
    from yaml import CSafeLoader as _Loader
except ImportError:  # pragma: no cover - depends on how PyYAML was built
    from yaml import SafeLoader as _Loader  # type: ignore[assignment]


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on what one request may ask for, so that no input can exhaust the provider."""

    max_objects: int = 1000
    max_files: int = 2000  # objects plus jmesPath entries
    max_parameter_bytes: int = 1 << 20  # the attributes JSON, the objects YAML
    max_name_length: int = 2048  # any one string field (AWS ARNs are at most 2048)
    max_yaml_depth: int = 32
    max_yaml_aliases: int = 64
    max_yaml_nodes: int = 50_000  # 1000 objects with failover and jmesPath entries need ~30k
    max_problems: int = 50


DEFAULT_LIMITS = Limits()


@dataclass(frozen=True, slots=True)
class ObjectsContext:
    """What validating one object needs from the other parameters."""

    translation: str | None
    default_mode: int
    region: str | None
    failover_region: str | None
    limits: Limits = DEFAULT_LIMITS


_EXPLICIT_TYPES = {"secretsmanager": ObjectType.SECRETS_MANAGER, "ssmparameter": ObjectType.SSM_PARAMETER}
_ARN_SERVICES = {"secretsmanager": ObjectType.SECRETS_MANAGER, "ssm": ObjectType.SSM_PARAMETER}
_MODE = re.compile(r"[0-7]{4}")
_OBJECT_FIELDS = (
    "objectName",
    "objectType",
    "objectAlias",
    "objectVersion",
    "objectVersionLabel",
    "filePermission",
    "jmesPath",
    "failoverObject",
)
_JMES_FIELDS = ("path", "objectAlias", "filePermission")
# jmespath's built-in functions and their signatures: a call it cannot make fails whatever the secret.
_JMES_FUNCTIONS = Functions().FUNCTION_TABLE


def _call_problem(node: Any) -> str | None:
    """What is wrong with a function call anywhere in a compiled JMESPath AST, if anything.

    jmespath only looks the function up, and counts its arguments, when it evaluates the call;
    checking here makes such a path fail at parse time rather than on the first Mount."""
    if isinstance(node, list):
        return next((found for item in node if (found := _call_problem(item)) is not None), None)
    if not isinstance(node, dict):
        return None
    if node.get("type") == "function_expression":
        name = str(node.get("value"))
        function = _JMES_FUNCTIONS.get(name)
        if function is None:
            return f"calls {name}(), which is not a JMESPath function"
        signature = function["signature"]
        given, takes = len(node.get("children") or ()), len(signature)
        variadic = bool(signature) and bool(signature[-1].get("variadic"))
        if given < takes or (given > takes and not variadic):
            least = "at least " if variadic else ""
            return f"calls {name}() with {given} argument(s); it takes {least}{takes}"
    return _call_problem(list(node.values()))


_FAILOVER_FIELDS = ("objectName", "objectVersion", "objectVersionLabel")
_QUOTE_MAX = 160


def quote(text: str) -> str:
    """`text` in double quotes for a message: shortened, non-printable characters escaped."""
    short = text if len(text) <= _QUOTE_MAX else text[:_QUOTE_MAX] + "..."
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in short) + '"'


_KINDS: tuple[tuple[type | tuple[type, ...], str], ...] = (
    (bool, "a boolean (quote it)"),  # before int: bool is an int
    ((int, float), "a number (quote it)"),
    (datetime.date, "a date (quote it)"),
    (list, "a list"),
    (dict, "a mapping"),
    (type(None), "empty"),
)


def _kind(value: object) -> str:
    """What a YAML value is, in the words a SecretProviderClass author uses."""
    for types, words in _KINDS:
        if isinstance(value, types):
            return words
    return f"a {type(value).__name__}"


class _YamlError(Exception):
    pass


def _describe_yaml_error(error: yaml.YAMLError) -> str:
    # Our own wording plus the position: the library's text would quote the document.
    if isinstance(error, yaml.MarkedYAMLError):
        what = error.problem or error.context or "syntax error"
        mark = error.problem_mark or error.context_mark
        if mark is not None:
            return f"{what} at line {mark.line + 1}, column {mark.column + 1}"
        return what
    return "unreadable YAML (invalid characters or encoding)"


def _load_yaml(text: str, limits: Limits) -> object:
    """safe_load, after an event pass that bounds nesting, aliases and size (no billion laughs)."""
    depth = nodes = aliases = documents = 0
    try:
        for event in yaml.parse(text, Loader=_Loader):
            if isinstance(event, yaml.CollectionStartEvent):
                depth += 1
                nodes += 1
                if depth > limits.max_yaml_depth:
                    raise _YamlError(f"is nested deeper than {limits.max_yaml_depth} levels")
            elif isinstance(event, yaml.CollectionEndEvent):
                depth -= 1
            elif isinstance(event, yaml.ScalarEvent):
                nodes += 1
            elif isinstance(event, yaml.AliasEvent):
                aliases += 1
                if aliases > limits.max_yaml_aliases:
                    raise _YamlError(f"uses more than {limits.max_yaml_aliases} YAML aliases")
            elif isinstance(event, yaml.DocumentStartEvent):
                documents += 1
                if documents > 1:
                    raise _YamlError("holds more than one YAML document")
            if nodes > limits.max_yaml_nodes:
                raise _YamlError(f"has more than {limits.max_yaml_nodes} YAML nodes")
        return yaml.load(text, Loader=_Loader)  # a safe loader: CSafeLoader or SafeLoader
    except yaml.YAMLError as error:
        raise _YamlError(f"is not valid YAML: {_describe_yaml_error(error)}") from None
    except (ValueError, OverflowError, TypeError, RecursionError):
        # Raised while constructing scalars (an impossible date, an int too long to read).
        raise _YamlError("is not valid YAML: a value cannot be read (check dates and numbers)") from None


@dataclass(frozen=True, slots=True)
class _Arn:
    service: str
    region: str


def _parse_arn(name: str) -> _Arn | None:
    """The Go SDK's rule: `arn:` prefix and six colon-separated sections."""
    parts = name.split(":", 5)
    if len(parts) != 6:
        return None
    return _Arn(service=parts[2], region=parts[3])


def arn_region_problem(name: str, region: str, what: str = "") -> str | None:
    """When `name` is an ARN in another region than `region`, the problem; else None."""
    if not name.startswith("arn:"):
        return None
    arn = _parse_arn(name)
    if arn is None or arn.region == region:
        return None
    return f"ARN region must match region {region}{what}; the ARN names region {quote(arn.region)}"


@dataclass
class _Entry:
    """One mapping being validated: its label for messages and the problems found so far."""

    label: str
    problems: list[str]
    limits: Limits
    fields: dict[str, object] = field(default_factory=dict)
    bad: set[str] = field(default_factory=set)

    def problem(self, message: str) -> None:
        self.problems.append(f"{self.label}: {message}")

    def load(self, mapping: dict[object, object], known: Sequence[str]) -> None:
        """Known keys, matched without regard to case (as Go's JSON decoding does)."""
        lookup = {name.lower(): name for name in known}
        spelled: dict[str, str] = {}
        for key, value in mapping.items():
            if not isinstance(key, str) or (canonical := lookup.get(key.lower())) is None:
                continue  # unknown keys are ignored, as the Go provider does
            if canonical in spelled:
                self.problem(f"{canonical} is given twice (as {quote(spelled[canonical])} and {quote(key)})")
                self.bad.add(canonical)
            spelled[canonical] = key
            self.fields[canonical] = value

    def text(self, key: str, *, numbers: bool = False) -> str:
        """A string field; "" when absent or null. `numbers` accepts YAML integers (versions)."""
        value = self.fields.get(key)
        if value is None or key in self.bad:
            return ""
        if numbers and isinstance(value, int) and not isinstance(value, bool) and value.bit_length() <= 64:
            value = str(value)
        if not isinstance(value, str):
            self.problem(f"{key} must be a string, got {_kind(value)}")
            self.bad.add(key)
            return ""
        if len(value) > self.limits.max_name_length:
            self.problem(f"{key} is longer than {self.limits.max_name_length} characters")
            self.bad.add(key)
            return ""
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.problem(f"{key} is not valid Unicode text")
            self.bad.add(key)
            return ""
        return value

    def mode(self, inherited: int) -> int:
        text = self.text("filePermission")
        if not text:
            return inherited
        if _MODE.fullmatch(text) is None:
            self.problem(f'filePermission {quote(text)} must be four octal digits such as "0600"')
            return inherited
        mode = int(text, 8)
        if mode > 0o777:
            self.problem(
                f"filePermission {quote(text)} sets setuid, setgid or sticky bits, which the driver refuses; "
                "use 0000 to 0777"
            )
            return inherited
        return mode

    def file(self, name: str, translation: str | None) -> str | None:
        try:
            return file_name(name, translation)
        except PathError as error:
            self.problem(str(error))
            return None


@dataclass(frozen=True, slots=True)
class _Parsed:
    """One object's raw identity (for duplicate rules) and, when it is valid, its spec."""

    index: int
    label: str
    name: str
    alias: str
    version_label: str
    jmes_aliases: tuple[tuple[str, str], ...]  # (objectAlias, path)
    files: tuple[tuple[str, str], ...]  # (final file name, owner label) that could be computed
    spec: ObjectSpec | None


def _object_type(  # noqa: PLR0911 - one early return per rule of the Go provider
    entry: _Entry, name: str, explicit: str, what: str
) -> ObjectType | None:
    """The type from objectType and/or the ARN's service, with the Go provider's messages."""
    arn: _Arn | None = None
    if name.startswith("arn:"):
        arn = _parse_arn(name)
        if arn is None:
            entry.problem(
                f"Invalid ARN format in {what}: expected arn:partition:service:region:account:resource"
            )
            return None
    from_arn: ObjectType | None = None
    if arn is not None:
        from_arn = _ARN_SERVICES.get(arn.service)
        if from_arn is None:
            entry.problem(f"Invalid service in ARN: {quote(arn.service)}; use a secretsmanager or ssm ARN")
            return None
    if explicit:
        chosen = _EXPLICIT_TYPES.get(explicit)
        if chosen is None:
            entry.problem(f"Invalid objectType: {quote(explicit)}; use secretsmanager or ssmparameter")
            return None
        if from_arn is not None and from_arn is not chosen:
            entry.problem(
                f"objectType does not match ARN: the ARN is for {quote(arn.service if arn else '')}"
            )
            return None
        return chosen
    if from_arn is None:
        if "objectType" not in entry.bad:
            entry.problem(
                "Must use objectType when a full ARN is not specified (secretsmanager or ssmparameter)"
            )
        return None
    return from_arn


@dataclass
class _Budget:
    """Files still allowed in this request (objects plus jmesPath entries)."""

    left: int

    def take(self, count: int) -> bool:
        self.left -= count
        return self.left >= 0


def _jmes_entries(
    entry: _Entry, raw: object, ctx: ObjectsContext, parent_mode: int, budget: _Budget
) -> tuple[list[JmesEntry], list[tuple[str, str]], list[tuple[str, str]]]:
    entries: list[JmesEntry] = []
    aliases: list[tuple[str, str]] = []
    files: list[tuple[str, str]] = []
    if raw is None or "jmesPath" in entry.bad:
        return entries, aliases, files
    if not isinstance(raw, list):
        entry.problem(f"jmesPath must be a list of {{path, objectAlias}} mappings, got {_kind(raw)}")
        return entries, aliases, files
    if not budget.take(len(raw)):
        entry.problem(f"too many files: objects and jmesPath entries together exceed {ctx.limits.max_files}")
        return entries, aliases, files
    for k, item in enumerate(raw):
        sub = _Entry(f"{entry.label} jmesPath[{k}]", entry.problems, ctx.limits)
        if not isinstance(item, dict):
            sub.problem(f"must be a mapping with path and objectAlias, got {_kind(item)}")
            continue
        sub.load(item, _JMES_FIELDS)
        path, alias = sub.text("path"), sub.text("objectAlias")
        if alias:
            sub.label = f"{entry.label} jmesPath[{k}] (objectAlias {quote(alias)})"
        mode = sub.mode(parent_mode)
        if not path and "path" not in sub.bad:
            sub.problem("Path must be specified for JMES object")
        if not alias and "objectAlias" not in sub.bad:
            sub.problem("Object alias must be specified for JMES object")
        if path:
            try:
                problem = _call_problem(jmespath.compile(path).parsed)
            except (JMESPathError, RecursionError, ValueError):
                problem = "is not a valid JMESPath expression"
            if problem is not None:
                sub.problem(f"path {quote(path)} {problem}")
                path = ""
        if not alias:
            continue
        aliases.append((alias, path))
        final = sub.file(alias, ctx.translation)
        if final is None:
            continue
        files.append((final, sub.label))
        if path:
            entries.append(JmesEntry(path=path, file_name=final, mode=mode))
    return entries, aliases, files


def _failover(
    entry: _Entry,
    raw: object,
    ctx: ObjectsContext,
    *,
    primary: ObjectRef,
    otype: ObjectType | None,
    alias: str,
) -> tuple[ObjectRef | None, bool]:
    """The failover ObjectRef (None when not configured) and whether it is valid."""
    if raw is None or "failoverObject" in entry.bad:
        return None, True
    if not isinstance(raw, dict):
        entry.problem(f"failoverObject must be a mapping, got {_kind(raw)}")
        return None, False
    sub = _Entry(f"{entry.label} failoverObject", entry.problems, ctx.limits)
    sub.load(raw, _FAILOVER_FIELDS)
    name = sub.text("objectName")
    if name:
        sub.label = f"{entry.label} failoverObject (objectName {quote(name)})"
    version = sub.text("objectVersion", numbers=True)
    label = sub.text("objectVersionLabel", numbers=True)
    before = len(entry.problems)
    if not (name or version or label):
        return None, not sub.bad
    if ctx.failover_region is None:
        sub.problem("failover object allowed only when failover region is defined (set failoverRegion)")
    if name:
        if not alias:
            entry.problem("object alias must be specified for objects with failover entries")
        failover_type = otype
        if name.startswith("arn:"):
            failover_type = _object_type(sub, name, "", "objectName")
        if failover_type is not None and otype is not None and failover_type is not otype:
            sub.problem(
                f"is for {failover_type.value}, but the object is {otype.value}; use the same service"
            )
        if ctx.failover_region is not None:
            mismatch = arn_region_problem(name, ctx.failover_region, " (the failoverRegion)")
            if mismatch is not None:
                sub.problem(mismatch)
        if version != (primary.version_id or ""):
            entry.problem("object versions must match between primary and failover regions")
    elif version and version != (primary.version_id or ""):
        entry.problem("object versions must match between primary and failover regions")
    if otype is ObjectType.SSM_PARAMETER and version and label:
        sub.problem("ssm parameters can not specify both objectVersion and objectVersionLabel")
    ref = ObjectRef(
        name=name or primary.name,
        version_id=version or primary.version_id,
        version_label=label or primary.version_label,
    )
    return ref, len(entry.problems) == before and not sub.bad


def _parse_one(index: int, raw: object, ctx: ObjectsContext, problems: list[str], budget: _Budget) -> _Parsed:
    entry = _Entry(f"objects[{index}]", problems, ctx.limits)
    if raw is None:
        entry.problem("empty entry; each entry needs at least objectName")
        return _Parsed(index, entry.label, "", "", "", (), (), None)
    if not isinstance(raw, dict):
        entry.problem(f"must be a mapping with objectName, got {_kind(raw)}")
        return _Parsed(index, entry.label, "", "", "", (), (), None)
    entry.load(raw, _OBJECT_FIELDS)
    name = entry.text("objectName")
    if name:
        entry.label = f"objects[{index}] (objectName {quote(name)})"
    before = len(problems)
    explicit = entry.text("objectType")
    alias = entry.text("objectAlias")
    version = entry.text("objectVersion", numbers=True)
    label = entry.text("objectVersionLabel", numbers=True)
    mode = entry.mode(ctx.default_mode)
    otype: ObjectType | None = None
    if not name:
        if "objectName" not in entry.bad:
            entry.problem("Object name must be specified")
    else:
        otype = _object_type(entry, name, explicit, "objectName")
        if ctx.region is not None:
            mismatch = arn_region_problem(name, ctx.region)
            if mismatch is not None:
                entry.problem(mismatch)
    if otype is ObjectType.SSM_PARAMETER and version and label:
        entry.problem("ssm parameters can not specify both objectVersion and objectVersionLabel")
    final = entry.file(alias or name, ctx.translation) if (alias or name) else None
    primary = ObjectRef(name=name, version_id=version or None, version_label=label or None)
    jmes, jmes_aliases, jmes_files = _jmes_entries(entry, entry.fields.get("jmesPath"), ctx, mode, budget)
    failover, failover_ok = _failover(
        entry, entry.fields.get("failoverObject"), ctx, primary=primary, otype=otype, alias=alias
    )
    files = ([(final, entry.label)] if final is not None else []) + jmes_files
    spec: ObjectSpec | None = None
    if len(problems) == before and not entry.bad and failover_ok and otype is not None and final is not None:
        spec = ObjectSpec(
            object_type=otype,
            primary=primary,
            file_name=final,
            mode=mode,
            alias=alias or None,
            jmes=tuple(jmes),
            failover=failover,
        )
    return _Parsed(index, entry.label, name, alias, label, tuple(jmes_aliases), tuple(files), spec)


def _duplicates(parsed: Sequence[_Parsed], problems: list[str]) -> None:
    """The Go provider's name and alias rules, then collisions of the final file names."""
    flagged: set[str] = set()  # owner labels already reported as duplicates
    by_name: dict[str, list[_Parsed]] = {}
    alias_owner: dict[str, str] = {}
    for item in parsed:
        if item.name:
            for earlier in by_name.get(item.name, ()):
                if earlier.alias == item.alias and earlier.version_label == item.version_label:
                    problems.append(
                        f"{item.label}: found descriptor with duplicate object name {quote(item.name)} "
                        f"(as {earlier.label}); give one of them another objectAlias or objectVersionLabel"
                    )
                    flagged.add(item.label)
                    break
            by_name.setdefault(item.name, []).append(item)
        if item.alias:
            if item.alias in alias_owner and item.label not in flagged:
                problems.append(
                    f"{item.label}: found duplicate object alias {quote(item.alias)} "
                    f"(already used by {alias_owner[item.alias]})"
                )
                flagged.add(item.label)
            alias_owner.setdefault(item.alias, item.label)
        for k, (alias, path) in enumerate(item.jmes_aliases):
            owner = f"{item.label} jmesPath[{k}] (objectAlias {quote(alias)})"
            if alias in alias_owner:
                problems.append(
                    f"{owner}: Name already in use for objectAlias: found duplicate object alias "
                    f"{quote(alias)} in JMES path entry {quote(path)} (already used by {alias_owner[alias]})"
                )
                flagged.add(owner)
            alias_owner.setdefault(alias, owner)
    files = [pair for item in parsed for pair in item.files]
    for conflict in find_conflicts([name for name, _ in files]):
        owner = files[conflict.second][1]
        if owner not in flagged:
            problems.append(
                f"{owner}: {conflict.reason} (also written by {files[conflict.first][1]}); "
                "set objectAlias so that every file name is unique"
            )


def parse_objects(  # noqa: PLR0911 - each early return ends on a problem that makes the rest moot
    text: str | None, ctx: ObjectsContext, problems: list[str]
) -> tuple[ObjectSpec, ...]:
    """The `objects` parameter as specs in document order; problems are appended to `problems`."""
    if text is None or text.strip() == "":
        problems.append("objects is missing or empty: list the secrets to mount in the parameter objects")
        return ()
    if len(text.encode("utf-8", "surrogatepass")) > ctx.limits.max_parameter_bytes:
        problems.append(f"objects is larger than {ctx.limits.max_parameter_bytes} bytes")
        return ()
    try:
        document = _load_yaml(text, ctx.limits)
    except _YamlError as error:
        problems.append(f"objects {error}")
        return ()
    if document is None or document == []:
        problems.append("objects is empty: list at least one object")
        return ()
    if not isinstance(document, list):
        problems.append(
            f"objects must be a YAML list of mappings (each with objectName), got {_kind(document)}"
        )
        return ()
    if len(document) > ctx.limits.max_objects:
        problems.append(
            f"objects lists {len(document)} entries; at most {ctx.limits.max_objects} are allowed"
        )
        return ()
    budget = _Budget(ctx.limits.max_files - len(document))
    parsed = [_parse_one(index, raw, ctx, problems, budget) for index, raw in enumerate(document)]
    _duplicates(parsed, problems)
    return tuple(item.spec for item in parsed if item.spec is not None)
