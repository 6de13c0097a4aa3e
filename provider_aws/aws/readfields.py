"""What is kept of an AWS answer: the fields the backends read, and nothing more.

botocore's response also carries headers, metadata and a datetime with a time-zone object per
timestamp, and an answer shared with later polls holds secret values, so each answer is cut down
(`reduced`) as it arrives."""

from __future__ import annotations

from typing import Any

__all__ = ["DESCRIBE", "READ_FIELDS", "reduced"]

DESCRIBE = "describe_secret"

_SECRET = ("ARN", "Name", "VersionId", "SecretString", "SecretBinary")
# Per operation: top-level fields kept, and for list fields the fields kept of each item.
# An operation not named here is passed through whole (and nothing reads such an answer later).
READ_FIELDS: dict[str, dict[str, tuple[str, ...] | None]] = {
    DESCRIBE: {"VersionIdsToStages": None},
    "get_secret_value": dict.fromkeys(_SECRET),
    "batch_get_secret_value": {"SecretValues": _SECRET, "Errors": ("SecretId", "ErrorCode", "Message")},
    "get_parameters": {"Parameters": ("Name", "ARN", "Value", "Version"), "InvalidParameters": None},
}


def reduced(operation: str, answer: dict[str, Any]) -> dict[str, Any]:
    """`answer` with only the fields `READ_FIELDS` names for `operation`."""
    fields = READ_FIELDS.get(operation)
    if fields is None:
        return answer
    kept: dict[str, Any] = {}
    for name, item_fields in fields.items():
        if name not in answer:
            continue
        value = answer[name]
        if item_fields is not None:
            value = [{k: item[k] for k in item_fields if k in item} for item in value or ()]
        kept[name] = value
    return kept
