"""The answer: files and versions from fetched values, jmesPath files included; pure."""

from __future__ import annotations

import json
from collections.abc import Iterable

import jmespath
from jmespath.exceptions import JMESPathError, JMESPathTypeError

from provider_aws.errors import ConfigError, PreconditionError
from provider_aws.model import FetchedObject, MountedFile, MountPlan, MountResult, ObjectVersion, SecretBytes

__all__ = ["build_result"]


def _derived(item: FetchedObject) -> list[tuple[MountedFile, str]]:
    spec = item.spec
    if not spec.jmes:
        return []
    name = spec.object_name
    try:
        document = json.loads(item.value.reveal())
    except (UnicodeDecodeError, ValueError):
        raise PreconditionError(
            f'object "{name}" has jmesPath entries but its value is not valid JSON: '
            "remove jmesPath or store the secret as JSON"
        ) from None
    except RecursionError:
        raise PreconditionError(
            f'object "{name}" has jmesPath entries but its value is JSON nested too deeply to read: '
            "remove jmesPath or store a flatter document"
        ) from None
    files = []
    for entry in spec.jmes:
        try:
            result = jmespath.search(entry.path, document)
        except JMESPathTypeError as error:
            # Valid (the parse checked it), but the secret holds another type than the function takes.
            # The error's text holds the value: only its type and the function are named.
            expected = ", ".join(error.expected_types)
            raise PreconditionError(
                f'object "{name}": jmesPath path "{entry.path}" (objectAlias "{entry.file_name}") '
                f"calls {error.function_name}() on a {error.actual_type}, which it does not take "
                f"(it takes {expected}): check the path against the secret's JSON"
            ) from None
        except JMESPathError:
            where = f'object "{name}": jmesPath path "{entry.path}" (objectAlias "{entry.file_name}")'
            raise ConfigError([f"{where} is not a valid JMESPath expression"]) from None
        except RecursionError:
            raise PreconditionError(
                f'object "{name}": jmesPath path "{entry.path}" (objectAlias "{entry.file_name}") '
                "goes deeper into the secret's JSON than can be evaluated: select a shallower value"
            ) from None
        if result is None:
            raise PreconditionError(
                f'object "{name}": jmesPath path "{entry.path}" (objectAlias "{entry.file_name}") '
                "matched nothing in the secret: check the path against the secret's JSON keys"
            )
        if not isinstance(result, str):
            raise PreconditionError(
                f'object "{name}": jmesPath path "{entry.path}" (objectAlias "{entry.file_name}") '
                f"must select a string, not a {type(result).__name__}: select a single value"
            )
        files.append(
            (MountedFile(entry.file_name, entry.mode, SecretBytes(result.encode("utf-8"))), item.version)
        )
    return files


def build_result(plan: MountPlan, fetched: Iterable[FetchedObject]) -> MountResult:
    """Every file of the mount, sorted by path, each with its object version."""
    by_name = {item.spec.file_name: item for item in fetched}
    entries: list[tuple[MountedFile, str]] = []
    for spec in plan.objects:
        item = by_name[spec.file_name]
        entries.append((MountedFile(spec.file_name, spec.mode, item.value), item.version))
        entries.extend(_derived(item))
    entries.sort(key=lambda entry: entry[0].path)
    return MountResult(
        files=tuple(file for file, _ in entries),
        versions=tuple(ObjectVersion(file.path, version) for file, version in entries),
    )
