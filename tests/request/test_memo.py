"""The memo of parsed `objects`: a remembered parse is the parse, problems included, and it is bounded."""

from __future__ import annotations

import json

import pytest

from provider_aws.errors import ConfigError
from provider_aws.model import MountInput
from provider_aws.request.memo import MAX_TEXT_CHARS, ObjectsMemo
from provider_aws.request.objects import ObjectsContext, parse_objects
from provider_aws.request.parse import parse_mount_request

CONTEXT = ObjectsContext(translation="_", default_mode=0o644, region="eu-west-1", failover_region=None)
GOOD = "- objectName: db\n  objectType: secretsmanager\n- objectName: /app/flag\n  objectType: ssmparameter\n"
BAD = "- objectName: db\n  objectType: vault\n- objectAlias: x\n"


@pytest.mark.parametrize("text", [GOOD, BAD, "", "[unclosed"])
def test_a_remembered_parse_equals_a_fresh_one_problems_included(text: str) -> None:
    memo = ObjectsMemo()
    fresh: list[str] = []
    expected = parse_objects(text, CONTEXT, fresh)
    for _ in range(2):
        problems: list[str] = ["earlier problem"]
        assert memo.parse(text, CONTEXT, problems) == expected
        assert problems == ["earlier problem", *fresh]
    assert len(memo) == 1


def test_another_context_is_another_entry() -> None:
    memo = ObjectsMemo()
    other = ObjectsContext(translation="_", default_mode=0o600, region="eu-west-1", failover_region=None)
    first = memo.parse(GOOD, CONTEXT, [])
    second = memo.parse(GOOD, other, [])
    assert [spec.mode for spec in first] == [0o644, 0o644]
    assert [spec.mode for spec in second] == [0o600, 0o600]
    assert len(memo) == 2


def test_bounded_in_entries_and_text_size() -> None:
    memo = ObjectsMemo(max_entries=3)
    for index in range(10):
        memo.parse(f"- objectName: s{index}\n  objectType: secretsmanager\n", CONTEXT, [])
    assert len(memo) == 3
    big = "".join(f"- objectName: s{index}\n  objectType: secretsmanager\n" for index in range(2000))
    assert len(big) > MAX_TEXT_CHARS
    memo.parse(big, CONTEXT, [])
    assert len(memo) == 3


def test_mount_plans_with_and_without_the_memo_are_equal() -> None:
    memo = ObjectsMemo()
    attributes = json.dumps({"objects": GOOD, "region": "eu-west-1", "csi.storage.k8s.io/pod.name": "p"})
    request = MountInput(attributes, "null", "/target", "420")
    assert parse_mount_request(request, objects_memo=memo) == parse_mount_request(request)
    assert parse_mount_request(request, objects_memo=memo) == parse_mount_request(request)
    bad = MountInput(json.dumps({"objects": BAD}), "null", "/target", "420")
    with pytest.raises(ConfigError) as plain:
        parse_mount_request(bad)
    for _ in range(2):
        with pytest.raises(ConfigError) as remembered:
            parse_mount_request(bad, objects_memo=memo)
        assert remembered.value.message == plain.value.message
