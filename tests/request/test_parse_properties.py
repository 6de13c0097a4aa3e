"""Property: any request gives a MountPlan or a ConfigError, and a plan only holds safe, unique paths."""

from __future__ import annotations

import json
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from provider_aws.errors import ConfigError
from provider_aws.model import MountInput, MountPlan
from provider_aws.request.parse import bind_region, parse_mount_request, validate_parameters
from provider_aws.request.paths import find_conflicts, path_problem

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Characters that exercise path rules: separators, dots, control characters, multi-byte text.
_NAME_ALPHABET = st.sampled_from(["a", "b", "/", ".", "..", "_", ":", "\x00", "\n", "é", "名", " ", "-", "*"])
names = st.one_of(
    st.lists(_NAME_ALPHABET, max_size=12).map("".join),
    st.sampled_from(
        [
            "arn:aws:secretsmanager:us-east-1:111122223333:secret:db-AbC",
            "arn:aws:ssm:us-west-2:111122223333:parameter/app/x",
            "arn:aws:s3:us-east-1:1:bucket",
            "arn:broken",
            "..",
            "../x",
            "/a/b",
        ]
    ),
    st.text(max_size=20),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=True),
    names,
    st.sampled_from(["0600", "0777", "4755"]),
)
field_values = st.one_of(scalars, st.lists(scalars, max_size=3), st.dictionaries(names, scalars, max_size=3))
jmes_entry = st.fixed_dictionaries(
    {},
    optional={
        "path": st.one_of(st.sampled_from(["a.b", "user.password", "a[", "[*].x", ""]), field_values),
        "objectAlias": st.one_of(names, field_values),
        "filePermission": st.one_of(st.sampled_from(["0400", "0644", "999", "7777"]), field_values),
    },
)
failover = st.fixed_dictionaries(
    {},
    optional={
        "objectName": names,
        "objectVersion": st.one_of(st.sampled_from(["v1", "3"]), scalars),
        "objectVersionLabel": scalars,
    },
)
descriptor = st.fixed_dictionaries(
    {},
    optional={
        "objectName": names,
        "objectType": st.one_of(st.sampled_from(["secretsmanager", "ssmparameter", "ssm", "s3"]), scalars),
        "objectAlias": st.one_of(names, scalars),
        "objectVersion": st.one_of(st.sampled_from(["v1", "3"]), scalars),
        "objectVersionLabel": scalars,
        "filePermission": st.one_of(st.sampled_from(["0400", "0644", "600", "4755"]), scalars),
        "jmesPath": st.one_of(st.lists(jmes_entry, max_size=3), field_values),
        "failoverObject": st.one_of(failover, field_values),
        "unknownKey": field_values,
    },
)
# Mostly well-formed objects whose names and aliases stress the path rules, so that plans happen.
plausible_names = st.lists(st.sampled_from(["a", "b", "c", "/", ".", "é", "-"]), min_size=1, max_size=8).map(
    "".join
)
plausible = st.fixed_dictionaries(
    {"objectName": plausible_names, "objectType": st.sampled_from(["secretsmanager", "ssmparameter"])},
    optional={
        "objectAlias": plausible_names,
        "filePermission": st.sampled_from(["0400", "0644", "0000"]),
        "jmesPath": st.lists(
            st.fixed_dictionaries({"path": st.just("a.b"), "objectAlias": plausible_names}), max_size=3
        ),
    },
)
structured_yaml = st.one_of(
    st.lists(plausible, min_size=1, max_size=6).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True)),
    st.lists(st.one_of(descriptor, scalars), max_size=6),
    field_values,
).map(lambda doc: yaml.safe_dump(doc, allow_unicode=True))


def _anchored(count: int) -> str:
    """A document whose aliases would expand exponentially if anything walked them."""
    lines = ['a0: &a0 ["x", "x", "x", "x"]']
    lines += [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]" for i in range(1, count)]
    body = "\n".join(f"    {line}" for line in lines)
    return f"- objectName: a\n  objectType: secretsmanager\n  jmesPath: *a{count - 1}\n  x:\n{body}"


def _many(count: int) -> str:
    return "".join(f"- {{objectName: o{i}, objectType: secretsmanager}}\n" for i in range(count))


objects_yaml = st.one_of(
    structured_yaml,
    st.text(max_size=200),
    st.integers(1, 60).map(lambda n: "- " + "[" * n + "]" * n),
    st.integers(1, 60).map(lambda n: "- " + "{a: " * n + "x" + "}" * n),
    st.integers(1, 12).map(_anchored),
    st.sampled_from([0, 1, 999, 1000, 1001, 2500]).map(_many),
    st.just("&a [*a]"),
    st.just("- &a {objectName: x, objectType: secretsmanager, failoverObject: *a, jmesPath: [*a]}"),
)
regions = st.one_of(
    st.sampled_from(["", "us-east-1", "us-west-2", "eu-west-1", "bad region"]), st.text(max_size=12)
)
parameter_values: dict[str, Any] = {
    "objects": objects_yaml,
    "region": regions,
    "failoverRegion": regions,
    "pathTranslation": st.one_of(
        st.sampled_from(["", "False", "-", "/", ".", "é", "\x00", "ab"]), st.text(max_size=3)
    ),
    "usePodIdentity": st.one_of(st.sampled_from(["true", "0", "yes"]), st.text(max_size=5)),
    "preferredAddressType": st.one_of(st.sampled_from(["ipv4", "IPV6", "auto"]), st.text(max_size=5)),
    "csi.storage.k8s.io/serviceAccount.tokens": st.one_of(
        st.dictionaries(
            st.sampled_from(["sts.amazonaws.com", "pods.eks.amazonaws.com", ""]),
            st.one_of(st.fixed_dictionaries({"token": st.text(max_size=10)}), scalars),
            max_size=2,
        ).map(json.dumps),
        st.text(max_size=20),
    ),
    "csi.storage.k8s.io/pod.name": st.text(max_size=10),
}
_other_parameters = {key: value for key, value in parameter_values.items() if key != "objects"}
json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)
attributes = st.one_of(
    st.fixed_dictionaries({}, optional=parameter_values).map(json.dumps),
    st.fixed_dictionaries({"objects": objects_yaml}, optional=_other_parameters).map(json.dumps),
    st.dictionaries(st.sampled_from(list(parameter_values)), json_values, max_size=4).map(json.dumps),
    json_values.map(json.dumps),
    st.text(max_size=50),
)
permissions = st.one_of(
    st.integers(-10, 1000).map(str),
    st.sampled_from(["", "420", "0644", "4.2e2", "true", "null", "[]"]),
    st.text(max_size=6),
)
secrets = st.one_of(
    st.sampled_from(["null", "{}", "", "[]"]),
    st.dictionaries(
        st.sampled_from(["awsAccessKeyId", "awsSecretAccessKey", "awsSessionToken", "other"]),
        json_values,
        max_size=3,
    ).map(json.dumps),
    st.text(max_size=20),
)
current_versions = st.lists(st.tuples(st.text(max_size=10), st.text(max_size=10)), max_size=4).map(tuple)


def _assert_safe_paths(plan: MountPlan) -> None:
    paths = [spec.file_name for spec in plan.objects]
    paths += [entry.file_name for spec in plan.objects for entry in spec.jmes]
    assert paths, "a plan always has at least one file"
    for path in paths:
        assert path_problem(path) is None
        assert not path.startswith("/")
        assert ".." not in path.split("/")
        assert not path.startswith("..")
        assert "\x00" not in path
    assert len(set(paths)) == len(paths)
    assert find_conflicts(paths) == ()
    for spec in plan.objects:
        assert 0 <= spec.mode <= 0o777
        assert all(0 <= entry.mode <= 0o777 for entry in spec.jmes)


@SETTINGS
@given(
    attributes=attributes,
    secrets=secrets,
    target=st.sampled_from(["", "/var/lib/kubelet/pods/x/volumes/mount"]),
    permission=permissions,
    current=current_versions,
    region=regions,
)
def test_any_request_gives_a_plan_or_a_config_error(
    *,
    attributes: str,
    secrets: str,
    target: str,
    permission: str,
    current: tuple[tuple[str, str], ...],
    region: str,
) -> None:
    request = MountInput(attributes, secrets, target, permission, current)
    try:
        plan = parse_mount_request(request)
    except ConfigError as error:
        assert error.problems
        assert all(isinstance(problem, str) and problem for problem in error.problems)
        str(error).encode("utf-8")  # a message gRPC can carry
        return
    _assert_safe_paths(plan)
    assert plan.current_versions == current
    try:
        bound = bind_region(plan, region)
    except ConfigError as error:
        assert error.problems
        return
    assert bound.region is not None
    assert bound.objects == plan.objects


@SETTINGS
@given(parameters=st.fixed_dictionaries({}, optional=parameter_values))
def test_validate_parameters_agrees_with_mount(parameters: dict[str, str]) -> None:
    parameters.pop("csi.storage.k8s.io/serviceAccount.tokens", None)  # request-only: not a parameter
    problems = validate_parameters(parameters)
    request = MountInput(json.dumps(parameters), "null", "/mnt", "420")
    try:
        plan = parse_mount_request(request)
    except ConfigError as error:
        assert error.problems == problems
        return
    assert problems == ()
    _assert_safe_paths(plan)


@SETTINGS
@given(
    objects=st.lists(plausible, min_size=1, max_size=6),
    translation=st.sampled_from(["", "False", "-", "/", ".", "\x00"]),
    permission=st.sampled_from(["420", "256", "0", "511"]),
)
def test_plausible_requests_give_safe_plans(
    objects: list[dict[str, Any]], translation: str, permission: str
) -> None:
    """Mostly valid objects with path-stressing names: plans do happen, and their paths are safe."""
    attributes = json.dumps(
        {"objects": yaml.safe_dump(objects, allow_unicode=True), "pathTranslation": translation}
    )
    try:
        plan = parse_mount_request(MountInput(attributes, "null", "/mnt", permission))
    except ConfigError as error:
        assert error.problems
        return
    _assert_safe_paths(plan)
    assert len(plan.objects) == len(objects)
    assert plan.default_mode == int(permission)
