"""JSON nested deeper than Python can recurse is a clear refusal wherever it is read, never INTERNAL."""

from __future__ import annotations

import pytest

from provider_aws.answer import _derived
from provider_aws.errors import PreconditionError
from provider_aws.identity.podidentity import _detail
from provider_aws.model import (
    FetchedObject,
    JmesEntry,
    MountInput,
    ObjectRef,
    ObjectSpec,
    ObjectType,
    SecretBytes,
    SecretText,
)
from provider_aws.ops.metrics import Metrics
from provider_aws.ops.observe import AccessRecord

DEEP = "[" * 200_000 + "]" * 200_000


def fetched(value: str, path: str) -> FetchedObject:
    spec = ObjectSpec(
        ObjectType.SECRETS_MANAGER,
        ObjectRef("deep"),
        "deep",
        0o644,
        jmes=(JmesEntry(path, "out", 0o644),),
    )
    return FetchedObject(spec, SecretBytes(value.encode()), "v1", "eu-west-1")


def test_a_deep_secret_under_jmespath_is_a_precondition_failure() -> None:
    with pytest.raises(PreconditionError, match="nested too deeply"):
        _derived(fetched(DEEP, "a"))


def test_deep_attributes_give_no_pod_fields_to_the_access_line() -> None:
    record = AccessRecord(Metrics())
    with record.working(MountInput('{"x": ' + DEEP + "}", "", "", "")):
        pass
    assert (record.pod, record.namespace, record.service_account) == (None, None, None)


def test_a_deep_agent_refusal_is_reported_as_its_text() -> None:
    body = '{"message": ' + DEEP + "}"
    assert _detail(body, SecretText("pod-identity-token")).startswith('{"message": [[')
