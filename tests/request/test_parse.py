"""parse: a MountRequest -> MountPlan, following every rule of the SecretProviderClass semantics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from provider_aws import attributes as driver
from provider_aws.errors import ConfigError
from provider_aws.model import AddressPreference, MountInput, MountPlan, ObjectRef, ObjectType, SecretText
from provider_aws.request.parse import (
    DEFAULT_LIMITS,
    Limits,
    bind_region,
    parse_mount_request,
    validate_parameters,
)

DATA = Path(__file__).parent.parent / "data"
TARGET = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount"
SM = ObjectType.SECRETS_MANAGER
SSM = ObjectType.SSM_PARAMETER
ARN_SM = "arn:aws:secretsmanager:us-east-1:111122223333:secret:app/db-AbCdEf"
ARN_SSM = "arn:aws:ssm:us-east-1:111122223333:parameter/app/db"
TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJhdWQiOiJzdHMifQ.c2lnbmF0dXJl"


def make_request(
    params: dict[str, Any] | None = None,
    *,
    permission: str = "420",
    secrets: str = "null",
    target_path: str = TARGET,
    current: tuple[tuple[str, str], ...] = (),
) -> MountInput:
    attributes = {
        driver.POD_NAME: "web-0",
        driver.POD_NAMESPACE: "shop",
        driver.POD_UID: "uid-1",
        driver.SERVICE_ACCOUNT: "web",
        **(params or {}),
    }
    return MountInput(json.dumps(attributes), secrets, target_path, permission, current)


def parse(objects: str, **params: Any) -> MountPlan:
    return parse_mount_request(make_request({"objects": objects, **params}))


def problems_of(request: MountInput) -> tuple[str, ...]:
    with pytest.raises(ConfigError) as caught:
        parse_mount_request(request)
    return caught.value.problems


def files(plan: MountPlan) -> list[tuple[str, int]]:
    """Every file of the plan with its mode: each object, then its jmesPath entries."""
    out: list[tuple[str, int]] = []
    for spec in plan.objects:
        out.append((spec.file_name, spec.mode))
        out.extend((entry.file_name, entry.mode) for entry in spec.jmes)
    return out


def load_payload(name: str) -> MountInput:
    document = json.loads((DATA / name).read_text())
    return MountInput(
        attributes=document["attributes"],
        secrets=document["secrets"],
        target_path=document["target_path"],
        permission=document["permission"],
        current_versions=tuple((v["id"], v["version"]) for v in document["current_object_version"]),
    )


# --------------------------------------------------------------------------- real driver payloads


def test_seed_document_payload() -> None:
    plan = parse_mount_request(load_payload("seed_first_mount.json"))
    arn1 = "arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret-00AACC"
    arn2 = "arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret2-00AABB"
    assert files(plan) == [(arn1, 0o644), ("dbusername", 0o644), ("dbpassword", 0o644), ("foobar", 0o644)]
    assert [spec.object_type for spec in plan.objects] == [SM, SM]
    assert [spec.primary for spec in plan.objects] == [ObjectRef(arn1), ObjectRef(arn2)]
    assert [(e.path, e.file_name) for e in plan.objects[0].jmes] == [
        ("user.username", "dbusername"),
        ("user.password", "dbpassword"),
    ]
    assert plan.region is None  # the seed names no region: the mount layer finds it
    assert plan.regions == ()
    assert plan.pod.namespace == "default"
    assert plan.pod.name == "test-secrets"
    assert plan.pod.uid == "6a1b2c3d-4e5f-4a7b-8c9d-0e1f2a3b4c5d"
    assert plan.pod.service_account == "default"
    assert plan.default_mode == 0o644
    assert not plan.use_pod_identity
    assert plan.static_credentials is None
    assert plan.token_for("sts.amazonaws.com") is not None
    assert plan.token_for("pods.eks.amazonaws.com") is not None
    assert plan.token_for("other") is None
    assert plan.current_versions == ()
    bound = bind_region(plan, "eu-west-1")
    assert bound.regions == ("eu-west-1",)
    assert bound.objects == plan.objects


def test_seed_document_rotation_payload() -> None:
    plan = parse_mount_request(load_payload("seed_rotation.json"))
    arn1 = "arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret-00AACC"
    assert plan.static_credentials is None  # "{}" on rotation means no nodePublishSecretRef too
    mounted = dict(plan.current_versions)
    assert mounted[arn1] == "a1b2c3d4-0000-4000-8000-000000000001"
    assert mounted["foobar"] == "a1b2c3d4-0000-4000-8000-000000000002"
    assert "dbusername" not in mounted
    # the versions' ids are the plan's file names
    assert {spec.file_name for spec in plan.objects} == {arn1, "foobar"}


def test_failover_pod_identity_payload() -> None:
    plan = parse_mount_request(load_payload("failover_pod_identity.json"))
    assert plan.regions == ("us-east-1", "us-west-2")
    assert plan.use_pod_identity
    assert plan.preferred_address is AddressPreference.IPV6
    assert files(plan) == [("db/password", 0o400), ("config/app.json", 0o644), ("config/flags", 0o440)]
    ssm, secret = plan.objects
    assert ssm.object_type is SSM
    assert ssm.primary == ObjectRef("/app/prod/db/password", version_id="3")
    assert ssm.failover == ObjectRef(
        "arn:aws:ssm:us-west-2:111122223333:parameter/app/prod/db/password", version_id="3"
    )
    assert ssm.ref_for(1) == ssm.failover
    assert secret.primary.version_label == "AWSCURRENT"
    assert secret.failover is None
    assert secret.ref_for(1) == secret.primary
    creds = plan.static_credentials
    assert creds is not None
    assert creds.access_key_id == "AKIAEXAMPLEEXAMPLE00"
    assert creds.secret_access_key == SecretText("fake-secret-access-key-for-tests-only")
    assert creds.session_token is None


# --------------------------------------------------------------------------- accepted: names, types, modes

ACCEPTED: list[tuple[str, str, dict[str, str], list[tuple[str, int]], list[ObjectType]]] = [
    ("plain name", "- {objectName: MySecret, objectType: secretsmanager}", {}, [("MySecret", 0o644)], [SM]),
    ("slash -> _", "- {objectName: app/db, objectType: secretsmanager}", {}, [("app_db", 0o644)], [SM]),
    (
        "leading slash, translated",
        "- {objectName: /app/db, objectType: ssmparameter}",
        {},
        [("_app_db", 0o644)],
        [SSM],
    ),
    (
        "custom translation",
        "- {objectName: app/db, objectType: secretsmanager}",
        {"pathTranslation": "-"},
        [("app-db", 0o644)],
        [SM],
    ),
    (
        "translation off: leading slash stripped, sub-directories",
        "- {objectName: /app/prod/db, objectType: ssmparameter}",
        {"pathTranslation": "False"},
        [("app/prod/db", 0o644)],
        [SSM],
    ),
    (
        "translation off in lower case",
        "- {objectName: app/db, objectType: secretsmanager}",
        {"pathTranslation": "false"},
        [("app/db", 0o644)],
        [SM],
    ),
    (
        "alias wins over name",
        "- {objectName: app/db, objectType: secretsmanager, objectAlias: db}",
        {},
        [("db", 0o644)],
        [SM],
    ),
    (
        "alias is translated too",
        "- {objectName: x, objectType: secretsmanager, objectAlias: conf/db}",
        {},
        [("conf_db", 0o644)],
        [SM],
    ),
    (
        "secretsmanager ARN decides the type",
        f"- objectName: {ARN_SM}",
        {},
        [(ARN_SM.replace("/", "_"), 0o644)],
        [SM],
    ),
    ("ssm ARN decides the type", f"- objectName: {ARN_SSM}", {}, [(ARN_SSM.replace("/", "_"), 0o644)], [SSM]),
    (
        "ssm ARN with explicit ssmparameter",
        f"- {{objectName: '{ARN_SSM}', objectType: ssmparameter}}",
        {},
        [(ARN_SSM.replace("/", "_"), 0o644)],
        [SSM],
    ),
    (
        "ARN with explicit matching objectType and a region",
        f"- {{objectName: '{ARN_SM}', objectType: secretsmanager, objectAlias: db}}",
        {"region": "us-east-1"},
        [("db", 0o644)],
        [SM],
    ),
    (
        "object filePermission",
        "- {objectName: a, objectType: secretsmanager, filePermission: '0600'}",
        {},
        [("a", 0o600)],
        [SM],
    ),
    (
        "jmesPath entries inherit the object's mode unless they set their own",
        """
- objectName: a
  objectType: secretsmanager
  filePermission: "0640"
  jmesPath:
    - {path: user.name, objectAlias: user}
    - {path: user.password, objectAlias: pass, filePermission: "0400"}
""",
        {},
        [("a", 0o640), ("user", 0o640), ("pass", 0o400)],
        [SM],
    ),
    (
        "jmesPath entries inherit the request's mode",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: k, objectAlias: k}]}",
        {},
        [("a", 0o644), ("k", 0o644)],
        [SM],
    ),
    (
        "jmesPath alias is translated",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: k, objectAlias: x/k}]}",
        {},
        [("a", 0o644), ("x_k", 0o644)],
        [SM],
    ),
    (
        "mode 0000 and 0777 are modes",
        "- {objectName: a, objectType: secretsmanager, filePermission: '0000'}\n"
        "- {objectName: b, objectType: secretsmanager, filePermission: '0777'}",
        {},
        [("a", 0), ("b", 0o777)],
        [SM, SM],
    ),
    (
        "same name, different aliases",
        "- {objectName: a, objectType: secretsmanager, objectAlias: one}\n"
        "- {objectName: a, objectType: secretsmanager, objectAlias: two}",
        {},
        [("one", 0o644), ("two", 0o644)],
        [SM, SM],
    ),
    (
        "same name, one alias and one without",
        "- {objectName: a, objectType: secretsmanager}\n"
        "- {objectName: a, objectType: secretsmanager, objectAlias: b}",
        {},
        [("a", 0o644), ("b", 0o644)],
        [SM, SM],
    ),
    (
        "same name, same alias... no: same name, labels and aliases tell them apart",
        "- {objectName: a, objectType: secretsmanager, objectAlias: cur, objectVersionLabel: AWSCURRENT}\n"
        "- {objectName: a, objectType: secretsmanager, objectAlias: prev, objectVersionLabel: AWSPREVIOUS}",
        {},
        [("cur", 0o644), ("prev", 0o644)],
        [SM, SM],
    ),
    (
        "unknown keys are ignored, known keys match in any case",
        "- {ObjectName: a, OBJECTTYPE: secretsmanager, objectTemplate: '{{ x }}', somethingElse: [1, 2]}",
        {},
        [("a", 0o644)],
        [SM],
    ),
    (
        "null optional fields",
        "- {objectName: a, objectType: secretsmanager, "
        "objectAlias: null, jmesPath: null, failoverObject: null, "
        "filePermission: null, objectVersion: null}",
        {},
        [("a", 0o644)],
        [SM],
    ),
    (
        "a few YAML anchors and aliases",
        "- {objectName: a, objectType: &t secretsmanager}\n- {objectName: b, objectType: *t}",
        {},
        [("a", 0o644), ("b", 0o644)],
        [SM, SM],
    ),
    (
        "translation off: directories shared by several files",
        "- {objectName: conf/a, objectType: secretsmanager}\n"
        "- {objectName: conf/b, objectType: secretsmanager}",
        {"pathTranslation": "FALSE"},
        [("conf/a", 0o644), ("conf/b", 0o644)],
        [SM, SM],
    ),
    (
        "names that merely contain dots",
        "- {objectName: a..b, objectType: secretsmanager}\n"
        "- {objectName: .hidden, objectType: secretsmanager}",
        {},
        [("a..b", 0o644), (".hidden", 0o644)],
        [SM, SM],
    ),
]


@pytest.mark.parametrize(
    ("objects", "params", "expected", "types"),
    [case[1:] for case in ACCEPTED],
    ids=[case[0] for case in ACCEPTED],
)
def test_accepted(
    objects: str, params: dict[str, str], expected: list[tuple[str, int]], types: list[ObjectType]
) -> None:
    plan = parse(objects, **params)
    assert files(plan) == expected
    assert [spec.object_type for spec in plan.objects] == types
    assert not validate_parameters({"objects": objects, **params})


@pytest.mark.parametrize(
    ("objects", "primary"),
    [
        ("- {objectName: a, objectType: secretsmanager}", ObjectRef("a")),
        ("- {objectName: a, objectType: secretsmanager, objectVersion: v1}", ObjectRef("a", version_id="v1")),
        (
            "- {objectName: a, objectType: secretsmanager, objectVersionLabel: AWSPREVIOUS}",
            ObjectRef("a", version_label="AWSPREVIOUS"),
        ),
        (
            "- {objectName: a, objectType: secretsmanager, "
            "objectVersion: v1, objectVersionLabel: AWSCURRENT}",
            ObjectRef("a", version_id="v1", version_label="AWSCURRENT"),
        ),
        ("- {objectName: p, objectType: ssmparameter, objectVersion: 3}", ObjectRef("p", version_id="3")),
        (
            "- {objectName: p, objectType: ssmparameter, objectVersionLabel: prod}",
            ObjectRef("p", version_label="prod"),
        ),
        ("- {objectName: p, objectType: ssmparameter, objectVersion: ''}", ObjectRef("p")),
    ],
)
def test_object_refs(objects: str, primary: ObjectRef) -> None:
    (spec,) = parse(objects).objects
    assert spec.primary == primary
    assert spec.failover is None


@pytest.mark.parametrize(
    ("failover_object", "primary", "failover"),
    [
        (
            "{objectName: 'arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ'}",
            ObjectRef(ARN_SM),
            ObjectRef("arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ"),
        ),
        (
            "{objectName: 'arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ', "
            "objectVersionLabel: L2}",
            ObjectRef(ARN_SM, version_label="L1"),
            ObjectRef("arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ", version_label="L2"),
        ),
        (
            "{objectName: 'arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ'}",
            ObjectRef(ARN_SM, version_label="L1"),
            ObjectRef("arn:aws:secretsmanager:us-west-2:111122223333:secret:db-XyZ", version_label="L1"),
        ),
        ("{objectName: replica-db}", ObjectRef(ARN_SM), ObjectRef("replica-db")),
        (
            "{objectVersionLabel: L2}",
            ObjectRef(ARN_SM, version_label="L1"),
            ObjectRef(ARN_SM, version_label="L2"),
        ),
        ("{}", ObjectRef(ARN_SM), None),
    ],
)
def test_failover_refs(failover_object: str, primary: ObjectRef, failover: ObjectRef | None) -> None:
    label = f", objectVersionLabel: {primary.version_label}" if primary.version_label else ""
    objects = f"- {{objectName: '{ARN_SM}', objectAlias: db{label}, failoverObject: {failover_object}}}"
    (spec,) = parse(objects, region="us-east-1", failoverRegion="us-west-2").objects
    assert spec.primary == primary
    assert spec.failover == failover


@pytest.mark.parametrize(
    ("spelling", "expected"),
    [
        *[(s, True) for s in ("1", "t", "T", "TRUE", "true", "True")],
        *[(s, False) for s in ("0", "f", "F", "FALSE", "false", "False", "")],
    ],
)
def test_use_pod_identity_spellings(spelling: str, expected: bool) -> None:
    plan = parse("- {objectName: a, objectType: secretsmanager}", usePodIdentity=spelling)
    assert plan.use_pod_identity is expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("", AddressPreference.AUTO),
        ("auto", AddressPreference.AUTO),
        ("ipv4", AddressPreference.IPV4),
        ("IPv4", AddressPreference.IPV4),
        ("ipv6", AddressPreference.IPV6),
        ("IPV6", AddressPreference.IPV6),
        ("dual", AddressPreference.AUTO),
    ],
)
def test_preferred_address_type(value: str, expected: AddressPreference) -> None:
    plan = parse("- {objectName: a, objectType: secretsmanager}", preferredAddressType=value)
    assert plan.preferred_address is expected


@pytest.mark.parametrize(
    ("permission", "mode"), [("420", 0o644), ("256", 0o400), ("0", 0), ("511", 0o777), (" 384 ", 0o600)]
)
def test_request_permission_is_the_default_mode(permission: str, mode: int) -> None:
    request = make_request(
        {"objects": "- {objectName: a, objectType: secretsmanager}"}, permission=permission
    )
    plan = parse_mount_request(request)
    assert plan.default_mode == mode
    assert files(plan) == [("a", mode)]


@pytest.mark.parametrize("secrets", ["null", "{}", "", "  ", '{"other": "x"}', '{"awsAccessKeyId": ""}'])
def test_no_static_credentials(secrets: str) -> None:
    request = make_request({"objects": "- {objectName: a, objectType: secretsmanager}"}, secrets=secrets)
    assert parse_mount_request(request).static_credentials is None


def test_static_credentials_with_session_token() -> None:
    secrets = json.dumps({"awsAccessKeyId": "AKID", "awsSecretAccessKey": "s3cr3t", "awsSessionToken": "tok"})
    request = make_request({"objects": "- {objectName: a, objectType: secretsmanager}"}, secrets=secrets)
    creds = parse_mount_request(request).static_credentials
    assert creds is not None
    assert creds.access_key_id == "AKID"
    assert creds.secret_access_key.reveal() == "s3cr3t"
    assert creds.session_token is not None
    assert creds.session_token.reveal() == "tok"
    assert "s3cr3t" not in repr(creds)


def test_tokens_absent_and_present() -> None:
    objects = "- {objectName: a, objectType: secretsmanager}"
    assert parse(objects).tokens is None
    tokens = json.dumps(
        {
            "sts.amazonaws.com": {"token": TOKEN, "expirationTimestamp": "2030-01-01T00:00:00Z"},
            "pods.eks.amazonaws.com": {"token": ""},
        }
    )
    plan = parse(objects, **{"csi.storage.k8s.io/serviceAccount.tokens": tokens})
    token = plan.token_for("sts.amazonaws.com")
    assert token is not None
    assert token.reveal() == TOKEN
    assert plan.token_for("pods.eks.amazonaws.com") is None  # empty token: none for that audience
    assert TOKEN not in repr(plan)


def test_current_versions_pass_through() -> None:
    current = (("a", "v1"), ("gone", "v0"))
    request = make_request({"objects": "- {objectName: a, objectType: secretsmanager}"}, current=current)
    plan = parse_mount_request(request)
    assert plan.current_versions == current


def test_region_checks_run_at_once_when_region_is_given() -> None:
    plan = parse(f"- objectName: {ARN_SM}", region="us-east-1", failoverRegion="us-west-2")
    assert plan.regions == ("us-east-1", "us-west-2")


# --------------------------------------------------------------------------- rejected

REJECTED: list[tuple[str, str | None, dict[str, str], list[str]]] = [
    ("objects missing", None, {}, ["objects is missing or empty"]),
    ("objects empty", "", {}, ["objects is missing or empty"]),
    ("objects blank", "  \n ", {}, ["objects is missing or empty"]),
    ("objects null", "null", {}, ["objects is empty"]),
    ("objects empty list", "[]", {}, ["objects is empty"]),
    ("bad YAML", "- objectName: [unclosed", {}, ["objects is not valid YAML", "line "]),
    ("tab indentation", "- objectName: a\n\tobjectType: x", {}, ["objects is not valid YAML"]),
    ("a mapping, not a list", "objectName: a", {}, ["must be a YAML list of mappings", "got a mapping"]),
    ("a scalar, not a list", "hello", {}, ["must be a YAML list of mappings"]),
    ("two documents", "- {objectName: a}\n---\n- {objectName: b}", {}, ["more than one YAML document"]),
    ("empty entry", "- {objectName: a, objectType: secretsmanager}\n-\n", {}, ["objects[1]: empty entry"]),
    ("scalar entry", "- just-a-name", {}, ["objects[0]: must be a mapping with objectName, got a str"]),
    ("empty mapping", "- {}", {}, ["objects[0]: Object name must be specified"]),
    (
        "objectName empty",
        "- {objectName: '', objectType: secretsmanager}",
        {},
        ["Object name must be specified"],
    ),
    (
        "objectName a number",
        "- {objectName: 12, objectType: secretsmanager}",
        {},
        ["objectName must be a string"],
    ),
    (
        "objectName a list",
        "- {objectName: [a], objectType: secretsmanager}",
        {},
        ["objectName must be a string, got a list"],
    ),
    (
        "objectName a boolean",
        "- {objectName: on, objectType: secretsmanager}",
        {},
        ["got a boolean (quote it)"],
    ),
    (
        "objectAlias a date",
        "- {objectName: a, objectType: secretsmanager, objectAlias: 2024-01-02}",
        {},
        ["got a date"],
    ),
    (
        "objectType a mapping",
        "- {objectName: a, objectType: {x: 1}}",
        {},
        ["objectType must be a string, got a mapping"],
    ),
    ("unknown objectType", "- {objectName: a, objectType: s3}", {}, ['Invalid objectType: "s3"']),
    (
        "objectType ssm is not explicit",
        "- {objectName: a, objectType: ssm}",
        {},
        ['Invalid objectType: "ssm"'],
    ),
    (
        "objectType is case-sensitive",
        "- {objectName: a, objectType: SecretsManager}",
        {},
        ["Invalid objectType"],
    ),
    (
        "no objectType, no ARN",
        "- {objectName: a}",
        {},
        ["Must use objectType when a full ARN is not specified"],
    ),
    ("ARN too short", "- {objectName: 'arn:aws:secretsmanager:us-east-1'}", {}, ["Invalid ARN format"]),
    (
        "ARN of another service",
        "- {objectName: 'arn:aws:s3:us-east-1:1:bucket/x'}",
        {},
        ['Invalid service in ARN: "s3"'],
    ),
    (
        "ARN of another service with an objectType",
        "- {objectName: 'arn:aws:s3:us-east-1:1:bucket/x', objectType: ssmparameter}",
        {},
        ["Invalid service in ARN"],
    ),
    (
        "objectType contradicts the ARN",
        f"- {{objectName: '{ARN_SM}', objectType: ssmparameter}}",
        {},
        ["objectType does not match ARN"],
    ),
    (
        "ARN in another region",
        f"- objectName: {ARN_SM}",
        {"region": "eu-west-1"},
        ["ARN region must match region eu-west-1", '"us-east-1"'],
    ),
    (
        "failover region equals region",
        "- {objectName: a, objectType: secretsmanager}",
        {"region": "us-east-1", "failoverRegion": "us-east-1"},
        ["us-east-1: failover region cannot be the same as the primary region"],
    ),
    (
        "invalid region name",
        "- {objectName: a, objectType: secretsmanager}",
        {"region": "us east 1"},
        ["not a valid AWS region"],
    ),
    (
        "invalid failover region name",
        "- {objectName: a, objectType: secretsmanager}",
        {"failoverRegion": "../x"},
        ["failoverRegion", "not a valid AWS region"],
    ),
    (
        "pathTranslation of two characters",
        "- {objectName: a, objectType: secretsmanager}",
        {"pathTranslation": "__"},
        ["pathTranslation must be either 'False' or a single character string"],
    ),
    (
        "pathTranslation of one multi-byte character",
        "- {objectName: a, objectType: secretsmanager}",
        {"pathTranslation": "é"},
        ["pathTranslation must be either 'False' or a single character string"],
    ),
    (
        "usePodIdentity unparsable",
        "- {objectName: a, objectType: secretsmanager}",
        {"usePodIdentity": "yes"},
        ["failed to parse usePodIdentity value"],
    ),
    (
        "ssm with version and label",
        "- {objectName: p, objectType: ssmparameter, objectVersion: '1', objectVersionLabel: prod}",
        {},
        ["ssm parameters can not specify both objectVersion and objectVersionLabel"],
    ),
    (
        "filePermission three digits",
        "- {objectName: a, objectType: secretsmanager, filePermission: '600'}",
        {},
        ["four octal digits"],
    ),
    (
        "filePermission not octal",
        "- {objectName: a, objectType: secretsmanager, filePermission: '0800'}",
        {},
        ["four octal digits"],
    ),
    (
        "filePermission letters",
        "- {objectName: a, objectType: secretsmanager, filePermission: rw-r'}",
        {},
        ["four octal digits"],
    ),
    (
        "filePermission with a trailing newline",
        '- objectName: a\n  objectType: secretsmanager\n  filePermission: "0600\\n"',
        {},
        ["four octal digits"],
    ),
    (
        "filePermission unquoted (YAML reads 0600 as a number)",
        "- {objectName: a, objectType: secretsmanager, filePermission: 0600}",
        {},
        ["filePermission must be a string, got a number (quote it)"],
    ),
    (
        "filePermission setuid",
        "- {objectName: a, objectType: secretsmanager, filePermission: '4755'}",
        {},
        ["setuid"],
    ),
    (
        "jmesPath not a list",
        "- {objectName: a, objectType: secretsmanager, jmesPath: {path: p}}",
        {},
        ["jmesPath must be a list"],
    ),
    (
        "jmesPath entry a string",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [p]}",
        {},
        ["jmesPath[0]: must be a mapping"],
    ),
    (
        "jmesPath without path",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{objectAlias: x}]}",
        {},
        ['jmesPath[0] (objectAlias "x"): Path must be specified for JMES object'],
    ),
    (
        "jmesPath without alias",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: x}]}",
        {},
        ["jmesPath[0]: Object alias must be specified for JMES object"],
    ),
    (
        "jmesPath path not JMESPath",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: 'a[', objectAlias: x}]}",
        {},
        ["not a valid JMESPath expression"],
    ),
    (
        "jmesPath filePermission bad",
        "- {objectName: a, objectType: secretsmanager, jmesPath: "
        "[{path: a, objectAlias: x, filePermission: '9'}]}",
        {},
        ['jmesPath[0] (objectAlias "x"): filePermission "9" must be four octal digits'],
    ),
    (
        "failoverObject without objectAlias",
        "- {objectName: a, objectType: secretsmanager, failoverObject: {objectName: b}}",
        {"failoverRegion": "us-west-2"},
        ["object alias must be specified for objects with failover entries"],
    ),
    (
        "failoverObject without failoverRegion",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, failoverObject: {objectName: b}}",
        {},
        ["failover object allowed only when failover region is defined"],
    ),
    (
        "failoverObject ARN not in the failover region",
        f"- {{objectName: a, objectType: secretsmanager, "
        f"objectAlias: x, failoverObject: {{objectName: '{ARN_SM}'}}}}",
        {"failoverRegion": "us-west-2"},
        ["ARN region must match region us-west-2 (the failoverRegion)"],
    ),
    (
        "failoverObject version differs",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersion: v1, "
        "failoverObject: {objectName: b, objectVersion: v2}}",
        {"failoverRegion": "us-west-2"},
        ["object versions must match between primary and failover regions"],
    ),
    (
        "failoverObject version missing while the primary pins one",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersion: v1, "
        "failoverObject: {objectName: b}}",
        {"failoverRegion": "us-west-2"},
        ["object versions must match between primary and failover regions"],
    ),
    (
        "failoverObject of another service",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, "
        "failoverObject: {objectName: 'arn:aws:ssm:us-west-2:1:parameter/p'}}",
        {"failoverRegion": "us-west-2"},
        ["is for ssmparameter, but the object is secretsmanager"],
    ),
    (
        "failoverObject bad ARN",
        "- {objectName: a, objectType: secretsmanager, "
        "objectAlias: x, failoverObject: {objectName: 'arn:x'}}",
        {"failoverRegion": "us-west-2"},
        ['failoverObject (objectName "arn:x"): Invalid ARN format'],
    ),
    (
        "failoverObject ssm with version and label",
        "- {objectName: p, objectType: ssmparameter, objectAlias: x, objectVersion: '1', "
        "failoverObject: {objectName: q, objectVersion: '1', objectVersionLabel: l}}",
        {"failoverRegion": "us-west-2"},
        ["failoverObject", "ssm parameters can not specify both"],
    ),
    (
        "failoverObject not a mapping",
        "- {objectName: a, objectType: secretsmanager, failoverObject: [b]}",
        {"failoverRegion": "us-west-2"},
        ["failoverObject must be a mapping"],
    ),
    (
        "duplicate name, no alias, no label",
        "- {objectName: a, objectType: secretsmanager}\n- {objectName: a, objectType: secretsmanager}",
        {},
        ['objects[1] (objectName "a"): found descriptor with duplicate object name "a"'],
    ),
    (
        "duplicate name with the same alias",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n"
        "- {objectName: a, objectType: secretsmanager, objectAlias: x}",
        {},
        ["duplicate object name"],
    ),
    (
        "duplicate name with the same label",
        "- {objectName: a, objectType: secretsmanager, objectVersionLabel: L}\n"
        "- {objectName: a, objectType: secretsmanager, objectVersionLabel: L}",
        {},
        ["duplicate object name"],
    ),
    (
        "duplicate name with the same alias and label",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersionLabel: L}\n"
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, objectVersionLabel: L}",
        {},
        ["duplicate object name"],
    ),
    (
        "same name, labels differ but both write the same file",
        "- {objectName: a, objectType: secretsmanager, objectVersionLabel: L1}\n"
        "- {objectName: a, objectType: secretsmanager, objectVersionLabel: L2}",
        {},
        ["file name 'a' is used twice", "set objectAlias"],
    ),
    (
        "duplicate alias across objects",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n"
        "- {objectName: b, objectType: secretsmanager, objectAlias: x}",
        {},
        ['found duplicate object alias "x"'],
    ),
    (
        "jmesPath alias equal to an object alias",
        "- {objectName: a, objectType: secretsmanager, objectAlias: x}\n"
        "- {objectName: b, objectType: secretsmanager, jmesPath: [{path: k, objectAlias: x}]}",
        {},
        ["Name already in use for objectAlias", 'duplicate object alias "x"'],
    ),
    (
        "duplicate jmesPath aliases",
        "- {objectName: a, objectType: secretsmanager, jmesPath: "
        "[{path: k, objectAlias: x}, {path: j, objectAlias: x}]}",
        {},
        ["jmesPath[1]", "Name already in use for objectAlias"],
    ),
    (
        "names that differ but translate to the same file",
        "- {objectName: a/b, objectType: secretsmanager}\n- {objectName: a_b, objectType: secretsmanager}",
        {},
        ["file name 'a_b' is used twice"],
    ),
    (
        "an object name equal to a jmesPath file",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: k, objectAlias: user}]}\n"
        "- {objectName: user, objectType: secretsmanager}",
        {},
        ["file name 'user' is used twice"],
    ),
    (
        "a file that is also another file's directory",
        "- {objectName: conf, objectType: secretsmanager}\n"
        "- {objectName: conf/db, objectType: secretsmanager}",
        {"pathTranslation": "False"},
        ["needs 'conf' as a directory"],
    ),
    (
        "translation off: ../ escape",
        "- {objectName: ../x, objectType: secretsmanager}",
        {"pathTranslation": "False"},
        ["path can not contain ../"],
    ),
    (
        "translation off: inner ..",
        "- {objectName: a/../../x, objectType: secretsmanager}",
        {"pathTranslation": "False"},
        ["'..' element"],
    ),
    (
        "translation off: trailing /..",
        "- {objectName: a/.., objectType: secretsmanager}",
        {"pathTranslation": "False"},
        ["'..' element"],
    ),
    ("alias ..", "- {objectName: a, objectType: secretsmanager, objectAlias: '..'}", {}, ["'..' element"]),
    (
        "alias starting with ..",
        "- {objectName: a, objectType: secretsmanager, objectAlias: ..data}",
        {},
        ["starts with '..'"],
    ),
    (
        "alias with a NUL",
        '- {objectName: a, objectType: secretsmanager, objectAlias: "x\\0y"}',
        {},
        ["control character"],
    ),
    ("name with a newline", '- {objectName: "a\\nb", objectType: secretsmanager}', {}, ["control character"]),
    (
        "absolute with translation '/'",
        "- {objectName: /etc/x, objectType: secretsmanager}",
        {"pathTranslation": "/"},
        ["absolute"],
    ),
    (
        "jmesPath alias escaping",
        "- {objectName: a, objectType: secretsmanager, jmesPath: [{path: k, objectAlias: ../k}]}",
        {"pathTranslation": "False"},
        ["'..' element"],
    ),
    (
        "key given twice in two cases",
        "- {objectName: a, ObjectName: b, objectType: secretsmanager}",
        {},
        ["objectName is given twice"],
    ),
    (
        "name too long",
        f"- {{objectName: {'n' * 3000}, objectType: secretsmanager}}",
        {},
        ["objectName is longer than 2048"],
    ),
    (
        "ssm version a float",
        "- {objectName: p, objectType: ssmparameter, objectVersion: 1.5}",
        {},
        ["objectVersion must be a string, got a number"],
    ),
    ("deep nesting", "- " + "[" * 40 + "]" * 40, {}, ["nested deeper than 32"]),
    ("undefined alias", "- *nothing", {}, ["objects is not valid YAML"]),
    (
        "impossible date",
        "- {objectName: a, objectType: secretsmanager, objectAlias: 2024-13-45}",
        {},
        ["a value cannot be read"],
    ),
    ("unhashable key", "- {[a]: b}", {}, ["objects is not valid YAML"]),
    (
        "non-printable character",
        '- {objectName: "a", objectType: secretsmanager}\x07',
        {},
        ["objects is not valid YAML"],
    ),
]


@pytest.mark.parametrize(
    ("objects", "params", "expected"),
    [case[1:] for case in REJECTED],
    ids=[case[0] for case in REJECTED],
)
def test_rejected(objects: str | None, params: dict[str, str], expected: list[str]) -> None:
    attributes = dict(params)
    if objects is not None:
        attributes["objects"] = objects
    problems = problems_of(make_request(attributes))
    text = "\n".join(problems)
    for words in expected:
        assert words in text
    assert problems == validate_parameters(attributes)


# --------------------------------------------------------------------------- the request's own fields

GOOD_OBJECTS = {"objects": "- {objectName: a, objectType: secretsmanager}"}


@pytest.mark.parametrize(
    ("permission", "words"),
    [
        ("", "permission is empty"),
        ("abc", "failed to unmarshal file permission"),
        ("420.0", "failed to unmarshal file permission"),
        ("0644", "failed to unmarshal file permission"),
        ("true", "failed to unmarshal file permission"),
        ('"420"', "failed to unmarshal file permission"),
        ("-1", "not a file mode between 0 and 511"),
        ("512", "not a file mode between 0 and 511"),
        ("4294967295", "not a file mode between 0 and 511"),
        ("9" * 5000, "failed to unmarshal file permission"),
    ],
)
def test_bad_permission(permission: str, words: str) -> None:
    problems = problems_of(make_request(GOOD_OBJECTS, permission=permission))
    assert any(words in p for p in problems)


def test_empty_target_path() -> None:
    assert any("Missing mount path" in p for p in problems_of(make_request(GOOD_OBJECTS, target_path="")))


@pytest.mark.parametrize(
    ("attributes", "words"),
    [
        ("", "failed to unmarshal attributes"),
        ("{", "failed to unmarshal attributes"),
        ("[]", "must be a JSON object"),
        ("null", "must be a JSON object"),
        ('{"objects": 5}', 'parameter "objects" must be a string'),
        ('{"region": ["us-east-1"]}', 'parameter "region" must be a string'),
        ("[" * 100_000, "failed to unmarshal attributes"),
        ('{"objects": "\\ud800"}', "not valid Unicode"),
    ],
)
def test_bad_attributes(attributes: str, words: str) -> None:
    request = MountInput(attributes, "null", TARGET, "420")
    assert any(words in p for p in problems_of(request))


@pytest.mark.parametrize(
    ("tokens", "words"),
    [
        ("{not json", "is not valid JSON"),
        ('["sts.amazonaws.com"]', "must be a JSON object"),
        ('{"sts.amazonaws.com": "' + TOKEN + '"}', "must be an object"),
        ('{"sts.amazonaws.com": {"expirationTimestamp": "2030-01-01T00:00:00Z"}}', 'no string "token"'),
        ('{"sts.amazonaws.com": {"token": 12}}', 'no string "token"'),
        ('{"sts.amazonaws.com": {"token": "' + TOKEN + '"', "is not valid JSON"),
    ],
)
def test_bad_tokens_never_show_the_token(tokens: str, words: str) -> None:
    problems = problems_of(make_request({**GOOD_OBJECTS, "csi.storage.k8s.io/serviceAccount.tokens": tokens}))
    text = "\n".join(problems)
    assert words in text
    assert "csi.storage.k8s.io/serviceAccount.tokens" in text
    assert TOKEN not in text
    assert "eyJ" not in text


def test_tokens_attribute_must_be_a_string() -> None:
    attributes = json.dumps(
        {**GOOD_OBJECTS, "csi.storage.k8s.io/serviceAccount.tokens": {"a": {"token": TOKEN}}}
    )
    problems = problems_of(MountInput(attributes, "null", TARGET, "420"))
    assert any("must be a string holding JSON" in p for p in problems)
    assert TOKEN not in "\n".join(problems)


@pytest.mark.parametrize(
    ("secrets", "words"),
    [
        ("{", "are not valid JSON"),
        ("[]", "must be a JSON object"),
        ('{"awsAccessKeyId": "AKID"}', "has awsAccessKeyId but no awsSecretAccessKey"),
        ('{"awsSecretAccessKey": "s3cr3t-value"}', "has awsSecretAccessKey but no awsAccessKeyId"),
        (
            '{"awsAccessKeyId": "AKID", "awsSecretAccessKey": ""}',
            "has awsAccessKeyId but no awsSecretAccessKey",
        ),
        ('{"awsSessionToken": "s3cr3t-value"}', "awsSessionToken without"),
        ('{"awsAccessKeyId": "AKID", "awsSecretAccessKey": 5}', "awsSecretAccessKey must be a string"),
        ('{"awsAccessKeyId": "AKID", "awsSecretAccessKey": "s3cr3t-value', "are not valid JSON"),
    ],
)
def test_bad_static_credentials_never_show_values(secrets: str, words: str) -> None:
    problems = problems_of(make_request(GOOD_OBJECTS, secrets=secrets))
    text = "\n".join(problems)
    assert words in text
    assert "s3cr3t" not in text
    assert "AKID" not in text


# --------------------------------------------------------------------------- every problem at once


def test_every_problem_is_reported_at_once() -> None:
    objects = """
- objectName: db/creds
  objectType: secretsmanager
  filePermission: "999"
- objectName: good
  objectType: secretsmanager
- objectName: db/creds
  objectType: ssm
  jmesPath:
    - path: user
- objectName: "arn:aws:s3:eu-west-1:1:b"
- objectName: good
  objectType: secretsmanager
"""
    request = make_request(
        {"objects": objects, "pathTranslation": "ab", "usePodIdentity": "maybe"},
        permission="x",
        target_path="",
    )
    problems = problems_of(request)
    expected = [
        "Missing mount path",
        "failed to unmarshal file permission",
        "pathTranslation must be either 'False' or a single character string",
        "failed to parse usePodIdentity value",
        'objects[0] (objectName "db/creds"): filePermission "999" must be four octal digits',
        'objects[2] (objectName "db/creds"): Invalid objectType: "ssm"',
        'objects[2] (objectName "db/creds") jmesPath[0]: Object alias must be specified for JMES object',
        'objects[3] (objectName "arn:aws:s3:eu-west-1:1:b"): Invalid service in ARN: "s3"',
        'objects[2] (objectName "db/creds"): found descriptor '
        'with duplicate object name "db/creds" (as objects[0]',
        'objects[4] (objectName "good"): found descriptor with duplicate object name "good" (as objects[1]',
    ]
    assert len(problems) == len(expected)
    for problem, words in zip(problems, expected, strict=True):
        assert words in problem
    with pytest.raises(ConfigError) as caught:
        parse_mount_request(request)
    assert str(caught.value).startswith(f"{len(expected)} problems: ")
    assert caught.value.status.name == "INVALID_ARGUMENT"


def test_problem_count_is_capped() -> None:
    objects = "\n".join(f"- {{objectName: n{i}}}" for i in range(80))
    problems = problems_of(make_request({"objects": objects}))
    assert len(problems) == DEFAULT_LIMITS.max_problems + 1
    assert problems[-1] == f"... and {80 - DEFAULT_LIMITS.max_problems} more problems"


# --------------------------------------------------------------------------- bounds


def test_too_many_objects() -> None:
    limits = Limits(max_objects=3)
    objects = "\n".join(f"- {{objectName: n{i}, objectType: secretsmanager}}" for i in range(4))
    with pytest.raises(ConfigError, match="objects lists 4 entries; at most 3 are allowed"):
        parse_mount_request(make_request({"objects": objects}), limits=limits)


def test_too_many_files() -> None:
    limits = Limits(max_files=4)
    jmes = ", ".join(f"{{path: k{i}, objectAlias: k{i}}}" for i in range(4))
    objects = f"- {{objectName: a, objectType: secretsmanager, jmesPath: [{jmes}]}}"
    with pytest.raises(ConfigError, match="exceed 4"):
        parse_mount_request(make_request({"objects": objects}), limits=limits)


def test_too_large() -> None:
    limits = Limits(max_parameter_bytes=1000)
    objects = "- {objectName: a, objectType: secretsmanager}\n" + "#" * 1000
    with pytest.raises(ConfigError, match="larger than 1000 bytes"):
        parse_mount_request(make_request({"objects": objects}), limits=limits)
    assert any("objects is larger" in p for p in validate_parameters({"objects": objects}, limits=limits))


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 10)]
    objects = "- objectName: x\n  objectType: secretsmanager\n  extra:\n" + "\n".join(
        f"    {line}" for line in lines
    )
    problems = problems_of(make_request({"objects": objects}))
    assert problems == ("objects uses more than 64 YAML aliases",)


def test_aliases_reused_across_objects_stay_bounded() -> None:
    jmes = "[" + ", ".join(f"{{path: k{i}, objectAlias: k{i}}}" for i in range(30)) + "]"
    objects = f"- {{objectName: a, objectType: secretsmanager, jmesPath: &j {jmes}}}\n"
    objects += "".join(
        f"- {{objectName: b{i}, objectType: secretsmanager, jmesPath: *j}}\n" for i in range(60)
    )
    problems = problems_of(
        make_request({"objects": objects}),
    )
    # every reuse collides with the first list's aliases; the count is bounded, the run is quick
    assert any("Name already in use for objectAlias" in p for p in problems)
    assert len(problems) == DEFAULT_LIMITS.max_problems + 1


# --------------------------------------------------------------------------- bind_region


def test_bind_region_sets_the_primary_region() -> None:
    plan = parse(f"- objectName: {ARN_SM}\n- {{objectName: plain, objectType: ssmparameter}}")
    assert plan.region is None
    bound = bind_region(plan, "us-east-1")
    assert bound.region == "us-east-1"
    assert bound.regions == ("us-east-1",)
    assert plan.region is None  # the plan itself is immutable
    assert bind_region(bound, "us-east-1") is bound


def test_bind_region_checks_arn_regions() -> None:
    plan = parse(
        f"- objectName: {ARN_SM}\n- {{objectName: plain, objectType: ssmparameter}}\n- objectName: {ARN_SSM}"
    )
    with pytest.raises(ConfigError) as caught:
        bind_region(plan, "eu-central-1")
    assert len(caught.value.problems) == 2
    assert caught.value.problems[0].startswith(
        f'objects[0] (objectName "{ARN_SM}"): ARN region must match region'
    )
    assert caught.value.problems[1].startswith("objects[2]")


def test_bind_region_checks_the_failover_region() -> None:
    plan = parse("- {objectName: a, objectType: secretsmanager}", failoverRegion="us-west-2")
    assert plan.failover_region == "us-west-2"
    assert plan.regions == ()
    with pytest.raises(ConfigError, match="failover region cannot be the same as the primary region"):
        bind_region(plan, "us-west-2")
    assert bind_region(plan, "us-east-1").regions == ("us-east-1", "us-west-2")


def test_failover_arn_region_is_checked_before_binding() -> None:
    objects = (
        "- {objectName: a, objectType: secretsmanager, objectAlias: x, "
        f"failoverObject: {{objectName: '{ARN_SM}'}}}}"
    )
    with pytest.raises(ConfigError, match=r"ARN region must match region eu-west-1 \(the failoverRegion\)"):
        parse(objects, failoverRegion="eu-west-1")
    assert bind_region(parse(objects, failoverRegion="us-east-1"), "us-west-2").regions == (
        "us-west-2",
        "us-east-1",
    )


@pytest.mark.parametrize("region", ["", "us east", "-us-east-1", "x" * 70, "us-east-1\n"])
def test_bind_region_refuses_impossible_names(region: str) -> None:
    plan = parse("- {objectName: a, objectType: secretsmanager}")
    with pytest.raises(ConfigError, match="failed to retrieve region"):
        bind_region(plan, region)


def test_bind_region_refuses_to_move_a_plan() -> None:
    plan = parse("- {objectName: a, objectType: secretsmanager}", region="us-east-1")
    with pytest.raises(ConfigError, match="already uses region us-east-1"):
        bind_region(plan, "eu-west-1")


# --------------------------------------------------------------------------- validate_parameters


def test_validate_parameters_valid_and_invalid() -> None:
    assert validate_parameters({"objects": "- {objectName: a, objectType: secretsmanager}"}) == ()
    problems = validate_parameters({"objects": "- {objectName: a}", "region": "bad region!"})
    assert len(problems) == 2
    assert validate_parameters(
        {"objects": "- {objectName: a, objectType: secretsmanager}"}, default_mode=0o1777
    )


def test_validate_parameters_uses_the_default_mode_it_is_given() -> None:
    # the default mode reaches the objects: a bad one is reported, a good one is not
    assert (
        validate_parameters({"objects": "- {objectName: a, objectType: secretsmanager}"}, default_mode=0o600)
        == ()
    )


def test_yaml_node_count_is_bounded() -> None:
    objects = "- [" + ", ".join(["1"] * 200) + "]"
    with pytest.raises(ConfigError, match="more than 100 YAML nodes"):
        parse_mount_request(make_request({"objects": objects}), limits=Limits(max_yaml_nodes=100))


def test_attributes_size_is_bounded() -> None:
    request = make_request({**GOOD_OBJECTS, "padding": "x" * 2000})
    with pytest.raises(ConfigError, match="attributes are larger than 1000 bytes"):
        parse_mount_request(request, limits=Limits(max_parameter_bytes=1000))
