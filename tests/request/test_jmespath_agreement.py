"""A jmesPath path is judged the same at parse time and at Mount time: a call jmespath cannot make
(unknown function, wrong number of arguments) is refused when the SecretProviderClass is parsed; a
valid call on a value of another type fails the Mount as such, never as an invalid expression."""

from __future__ import annotations

import json

import pytest

from provider_aws.answer import _derived
from provider_aws.errors import PreconditionError
from provider_aws.model import FetchedObject, JmesEntry, ObjectRef, ObjectSpec, ObjectType, SecretBytes
from provider_aws.request.parse import validate_parameters


def problems(path: str) -> tuple[str, ...]:
    objects = (
        f"- {{objectName: a, objectType: secretsmanager, jmesPath: [{{path: '{path}', objectAlias: x}}]}}"
    )
    return validate_parameters({"objects": objects})


def derived(path: str, document: object) -> bytes:
    spec = ObjectSpec(
        ObjectType.SECRETS_MANAGER, ObjectRef("a"), "a", 0o644, jmes=(JmesEntry(path, "x", 0o644),)
    )
    value = SecretBytes(json.dumps(document).encode())
    ((file, _),) = _derived(FetchedObject(spec, value, "v1", "eu-west-1"))
    return file.contents.reveal()


@pytest.mark.parametrize(
    ("path", "problem"),
    [
        ("foo(name)", "calls foo(), which is not a JMESPath function"),
        ("abs(a, b)", "calls abs() with 2 argument(s); it takes 1"),
        ("merge()", "calls merge() with 0 argument(s); it takes at least 1"),
        ("a || to_string(nope(b))", "calls nope(), which is not a JMESPath function"),
        ("a[", "is not a valid JMESPath expression"),
    ],
)
def test_a_call_jmespath_cannot_make_is_refused_at_parse_time(path: str, problem: str) -> None:
    (found,) = problems(path)
    assert f'path "{path}" {problem}' in found


def test_a_valid_call_on_another_type_fails_the_mount_as_a_type_mismatch() -> None:
    assert problems("abs(name)") == ()
    with pytest.raises(PreconditionError) as caught:
        derived("abs(name)", {"name": "s3cr3t-value"})
    message = caught.value.message
    assert "calls abs() on a string, which it does not take (it takes number)" in message
    assert "not a valid JMESPath expression" not in message
    assert "s3cr3t-value" not in message


def test_valid_calls_still_work() -> None:
    assert problems("to_string(abs(n))") == ()
    assert derived("to_string(abs(n))", {"n": -3}) == b"3"
    assert problems("to_string(max_by(items, &n).n)") == ()
    assert derived("to_string(max_by(items, &n).n)", {"items": [{"n": 1}, {"n": 7}]}) == b"7"
