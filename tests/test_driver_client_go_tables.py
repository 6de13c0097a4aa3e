"""The Go provider's own test tables, re-expressed as SecretProviderClasses, through the driver's client.

The request shapes and the outcomes below come from the Go provider's tests (server/server_test.go:
`mountTests` and `mountTestsForMultiRegion`; provider/secret_descriptor_test.go;
provider/secret_value_test.go),
named after the Go test so a reader can find the original. There the AWS answers are hand mocks; here the
objects live in moto (through the counting, fault-injecting proxy), a mocked AWS error becomes an injected
HTTP error of the same class (5xx or 4xx), and each Mount goes through the Secrets Store CSI driver's own
client code (tests/driverclient) against `provider-aws serve`.

A Go test states success with the files it expects, or failure with an error text. Here a success must
write exactly those files (paths and contents, mode 0644) through the driver's writer; a failure must fail
with nothing written, and the status the driver sees is pinned. Where the Go test expects an outcome that
this provider deliberately does not reproduce, the case names what Go expected (`go_expected`) and why;
those differences are listed in the README ("Differences from the Go provider").

These are the facts its tests state; `make compat` (tests/compat) runs the same cases against the real Go
provider binary as well, side by side, and the README's table lists where the binary and its tests disagree.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.cli.drivermount import MountOptions, SecretProviderClass, build_request
from provider_aws.rpc.messages import MountRequest
from testkit.awsobjects import Put, store
from testkit.awsproxy import AwsProxy, Fault, ProxyState
from testkit.driverclient import (
    SharedProvider,
    driver_mount,
    driverclient_binary,
    shared_serve,
    written_tree,
)
from testkit.grpc_clients import short_socket_dir
from testkit.identity import ROLE, jwt
from testkit.kubeapi import FakeKubeApi
from testkit.leakscan import LeakScan
from testkit.requests import STATIC
from testkit.serveproc import serve_env, serve_process
from tests.conftest import seed_client

PRIMARY = "eu-west-1"
FAILOVER = "eu-central-1"
NODE = "node-7"
SM_OPERATIONS = ("GetSecretValue", "BatchGetSecretValue", "DescribeSecret")
SSM_OPERATIONS = ("GetParameters", "GetParameter")
# Fresh answers on every Mount, and one attempt per AWS request: the Go tests' mocked errors are final
# answers, not ones an SDK would retry.
SERVE_FLAGS = ("--coalesce-window", "0", "--aws-max-attempts", "1")

_ARN = re.compile(r"\{arn:([^}]+)\}")
SM_ARN = f"arn:aws:secretsmanager:{PRIMARY}:123456789012:secret:"
FAILOVER_SM_ARN = f"arn:aws:secretsmanager:{FAILOVER}:123456789012:secret:"
GO_ASKS_BOTH = (
    "Go asks the failover region on every Mount and fails on its 4xx; here the failover region is asked "
    "only after a retriable primary failure"
)


@dataclass(frozen=True)
class Cluster:
    """IRSA through a fake Kubernetes API; the region comes from the pod's node (NODE_NAME unset)."""

    role_annotation: bool = True
    pod: bool = True
    node: bool = True
    node_region_label: bool = True


@dataclass(frozen=True)
class GoCase:
    source: str  # the Go test file and test name
    objects: str  # spec.parameters.objects; "{arn:NAME}" is the ARN moto gave the secret NAME
    expect: Mapping[str, str] | str  # the files written (path -> contents), or the failure's status
    puts: tuple[Put, ...] = ()
    parameters: Mapping[str, str] = field(default_factory=dict)
    region: str | None = PRIMARY  # the `region` parameter; None: looked up through the cluster
    server_errors: tuple[tuple[str, str], ...] = ()  # (region, operation) answered with HTTP 500
    client_errors: tuple[tuple[str, str, str], ...] = ()  # (region, operation, code) answered with HTTP 400
    permission: str = "420"
    cluster: Cluster | None = None  # None: static credentials from a nodePublishSecretRef
    go_expected: str = ""  # set when the Go test expects another outcome: what, and why this one differs


def sm(name: str, value: str, region: str = PRIMARY) -> Put:
    return Put("secret", name, value, region)


def ssm(name: str, value: str, region: str = PRIMARY) -> Put:
    return Put("parameter", name, value, region)


def objects(*entries: tuple[str, str]) -> str:
    """The YAML of plain (objectName, objectType) entries."""
    return "".join(f"- objectName: {name!r}\n  objectType: {kind}\n" for name, kind in entries)


def sm_down(region: str) -> tuple[tuple[str, str], ...]:
    return tuple((region, operation) for operation in SM_OPERATIONS)


def ssm_down(region: str) -> tuple[tuple[str, str], ...]:
    return tuple((region, operation) for operation in SSM_OPERATIONS)


BASIC = objects(("TestSecret1", "secretsmanager"), ("TestParm1", "ssmparameter"))
# The Go tables' values "secret1" and "secret2", spelled so that the session's leak scan cannot take the
# object names TestSecret1 and TestSecret2 in an error message for a leaked value.
SECRET1, SECRET2 = "secret-one", "secret-two"
BASIC_PUTS = (sm("TestSecret1", SECRET1), ssm("TestParm1", "parm1"))
BASIC_FILES = {"TestSecret1": SECRET1, "TestParm1": "parm1"}
WITH_FAILOVER = {"failoverRegion": FAILOVER}
PARMS_11 = tuple(ssm(f"TestParm{i}", f"parm{i}") for i in range(1, 12))
SM_JSON = '{"dbUser": {"username": "SecretsManagerUser", "password": "SecretsManagerPassword"}}'
SSM_JSON = '{"dbUser": {"username": "ParameterStoreUser", "password" : "ParameterStorePassword"}}'
CREDS = '{"username": "ParameterStoreUser", "password": "PasswordForParameterStore"}'
JMES_OBJECT = """\
- objectName: jsonObject
  objectType: secretsmanager
  jmesPath:
    - path: {path}
      objectAlias: {alias}
"""


SERVER_TEST = "server_test.go"
CASES: tuple[GoCase, ...] = (
    # --- server_test.go, mountTests ---
    GoCase(f"{SERVER_TEST}: New Mount Success", BASIC, BASIC_FILES, BASIC_PUTS),
    GoCase(
        f"{SERVER_TEST}: Multi Region Success",
        BASIC,
        BASIC_FILES,
        (sm("TestSecret1", SECRET1, FAILOVER), ssm("TestParm1", "parm1")),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: Mount Json Success",
        """\
- objectName: TestSecret1
  objectType: secretsmanager
  jmesPath:
    - {path: dbUser.username, objectAlias: username}
    - {path: dbUser.password, objectAlias: password}
- objectName: TestParm1
  objectType: ssmparameter
  jmesPath:
    - {path: dbUser.username, objectAlias: ssmUsername}
    - {path: dbUser.password, objectAlias: ssmPassword}
""",
        {
            "TestSecret1": SM_JSON,
            "TestParm1": SSM_JSON,
            "username": "SecretsManagerUser",
            "password": "SecretsManagerPassword",
            "ssmUsername": "ParameterStoreUser",
            "ssmPassword": "ParameterStorePassword",
        },
        (sm("TestSecret1", SM_JSON), ssm("TestParm1", SSM_JSON)),
    ),
    GoCase(
        f"{SERVER_TEST}: Mount Json Success-specify ARN",
        """\
- objectName: "{arn:geheimnis}"
  objectAlias: TestSecret1
  jmesPath:
    - {path: dbUser.username, objectAlias: username}
""",
        {"TestSecret1": '{"dbUser": {"username": "SecretsManagerUser"}}', "username": "SecretsManagerUser"},
        (sm("geheimnis", '{"dbUser": {"username": "SecretsManagerUser"}}'),),
    ),
    GoCase(
        f"{SERVER_TEST}: New Mount Binary Success",
        BASIC,
        {"TestSecret1": "BinarySecret", "TestParm1": "parm1"},
        (Put("binary", "TestSecret1", "BinarySecret"), ssm("TestParm1", "parm1")),
    ),
    GoCase(
        f"{SERVER_TEST}: Big Batch Success",
        objects(
            ("TestSecret1", "secretsmanager"),
            ("BinarySecret1", "secretsmanager"),
            *((f"TestParm{i}", "ssmparameter") for i in range(1, 12)),
        ),
        {"TestSecret1": SECRET1, "BinarySecret1": "BinarySecret"}
        | {f"TestParm{i}": f"parm{i}" for i in range(1, 12)},
        (sm("TestSecret1", SECRET1), Put("binary", "BinarySecret1", "BinarySecret"), *PARMS_11),
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Pod Retrieval",
        BASIC,
        "NotFound",
        BASIC_PUTS,
        region=None,
        cluster=Cluster(pod=False),
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Node Retrieval",
        BASIC,
        "NotFound",
        BASIC_PUTS,
        region=None,
        cluster=Cluster(node=False),
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Region Retrieval",
        BASIC,
        "FailedPrecondition",
        BASIC_PUTS,
        region=None,
        cluster=Cluster(node_region_label=False),
    ),
    GoCase(f"{SERVER_TEST}: Fail File Perms", BASIC, "InvalidArgument", BASIC_PUTS, permission=""),
    GoCase(
        f"{SERVER_TEST}: Fail Session",
        BASIC,
        "FailedPrecondition",
        BASIC_PUTS,
        cluster=Cluster(role_annotation=False),
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Descriptors",
        "- objectName: TestSecret1\n  objectType: secretsmanager\n- objectType: ssmparameter\n",
        "InvalidArgument",
        BASIC_PUTS,
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Fetch Secret", BASIC, "Unavailable", BASIC_PUTS, server_errors=sm_down(PRIMARY)
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Fetch Parm", BASIC, "Unavailable", BASIC_PUTS, server_errors=ssm_down(PRIMARY)
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Fetch Parms",
        objects(
            ("TestSecret1", "secretsmanager"),
            ("TestParm1", "ssmparameter"),
            ("FailParm2", "ssmparameter"),
            ("TestParm3", "ssmparameter"),
            ("FailParm4", "ssmparameter"),
        ),
        "NotFound",
        (sm("TestSecret1", SECRET1), ssm("TestParm1", "parm1"), ssm("TestParm3", "parm3")),
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Write Param",
        objects(("TestSecret1", "secretsmanager"), ("../TestParm1", "ssmparameter")),
        "InvalidArgument",
        BASIC_PUTS,
        {"pathTranslation": "False"},
    ),
    GoCase(
        f"{SERVER_TEST}: Fail Write Secret",
        objects(("./../TestSecret1", "secretsmanager"), ("TestParm1", "ssmparameter")),
        "InvalidArgument",
        BASIC_PUTS,
        {"pathTranslation": "False"},
    ),
    GoCase(
        f"{SERVER_TEST}: Success With Slash",
        objects(("mypath/TestSecret1", "secretsmanager"), ("mypath/TestParm1", "ssmparameter")),
        {"mypath_TestSecret1": SECRET1, "mypath_TestParm1": "parm1"},
        (sm("mypath/TestSecret1", SECRET1), ssm("mypath/TestParm1", "parm1")),
    ),
    GoCase(
        f"{SERVER_TEST}: Slash to dash",
        objects(("mypath/TestSecret1", "secretsmanager"), ("mypath/TestParm1", "ssmparameter")),
        {"mypath-TestSecret1": SECRET1, "mypath-TestParm1": "parm1"},
        (sm("mypath/TestSecret1", SECRET1), ssm("mypath/TestParm1", "parm1")),
        {"pathTranslation": "-"},
    ),
    GoCase(
        f"{SERVER_TEST}: Fail pathTranslation",
        BASIC,
        "InvalidArgument",
        BASIC_PUTS,
        {"pathTranslation": "--"},
    ),
    GoCase(
        f"{SERVER_TEST}: Leading Slash OK",
        objects(("/TestSecret1", "secretsmanager"), ("/TestParm1", "ssmparameter")),
        BASIC_FILES,
        (sm("/TestSecret1", SECRET1), ssm("/TestParm1", "parm1")),
        {"pathTranslation": "False"},
    ),
    # --- server_test.go, mountTestsForMultiRegion ---
    GoCase(
        f"{SERVER_TEST}: Multi Region Secrets Manager Fallback Success",
        objects(("TestSecret1", "secretsmanager")),
        {"TestSecret1": SECRET1},
        (sm("TestSecret1", SECRET1, FAILOVER),),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Parameter Store Fallback Success",
        objects(("TestParm1", "ssmparameter")),
        {"TestParm1": "parm1"},
        (ssm("TestParm1", "parm1", FAILOVER),),
        WITH_FAILOVER,
        server_errors=ssm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Fallback Success",
        BASIC,
        BASIC_FILES,
        (sm("TestSecret1", SECRET1, FAILOVER), ssm("TestParm1", "parm1", FAILOVER)),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY) + ssm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Prefers Primary",
        BASIC,
        BASIC_FILES,
        (*BASIC_PUTS, sm("TestSecret1", "wrongSecret", FAILOVER), ssm("TestParm1", "wrongSecret", FAILOVER)),
        WITH_FAILOVER,
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Secret Manager Api Fail",
        objects(("TestSecret2", "secretsmanager")),
        "Unavailable",
        (sm("TestSecret2", "s2"), sm("TestSecret2", "s2", FAILOVER)),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY) + sm_down(FAILOVER),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Parameter Store Api Fail",
        objects(("TestParm2", "ssmparameter")),
        "Unavailable",
        (ssm("TestParm2", "p2"), ssm("TestParm2", "p2", FAILOVER)),
        WITH_FAILOVER,
        server_errors=ssm_down(PRIMARY) + ssm_down(FAILOVER),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Fallback Region Fail",
        objects(("TestSecret1", "secretsmanager")),
        "NotFound",
        (sm("TestSecret1", SECRET1, FAILOVER),),
        WITH_FAILOVER,
        region=None,
        cluster=Cluster(node=False),
    ),
    GoCase(
        f"{SERVER_TEST}: Region Equals FallbackRegion Fail",
        objects(("TestSecret1", "secretsmanager")),
        "InvalidArgument",
        (sm("TestSecret1", SECRET1),),
        {"failoverRegion": PRIMARY},
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Session Fail",
        BASIC,
        "FailedPrecondition",
        BASIC_PUTS,
        WITH_FAILOVER,
        cluster=Cluster(role_annotation=False),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Param Partial Fail",
        objects(("TestParm1", "ssmparameter"), ("TestParm2", "ssmparameter")),
        "NotFound",
        (ssm("TestParm2", "parm2"), ssm("TestParm1", "parm1", FAILOVER)),
        WITH_FAILOVER,
    ),
    GoCase(
        f"{SERVER_TEST}: SecretsManager Primary Region 4XX Fail",
        objects(("TestSecret1", "secretsmanager")),
        "NotFound",
        (sm("TestSecret1", SECRET1, FAILOVER),),
        WITH_FAILOVER,
    ),
    GoCase(
        f"{SERVER_TEST}: SecretsManager Primary Region 5XX Fail",
        objects(("TestSecret1", "secretsmanager")),
        {"TestSecret1": SECRET1},
        (sm("TestSecret1", SECRET1, FAILOVER),),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: SecretsManager Primary Region 5XX And Secondary Region 4XX Fail",
        objects(("TestSecret1", "secretsmanager")),
        "NotFound",
        (),
        WITH_FAILOVER,
        server_errors=sm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: ParameterStore Primary Region 4XX Fail",
        objects(("TestParm1", "ssmparameter")),
        "FailedPrecondition",
        (ssm("TestParm1", "parm1"), ssm("TestParm1", "parm1", FAILOVER)),
        WITH_FAILOVER,
        client_errors=((PRIMARY, "GetParameters", "InvalidKeyId"),),
    ),
    GoCase(
        f"{SERVER_TEST}: ParameterStore Primary Region 5XX Fail",
        objects(("TestParm1", "ssmparameter")),
        {"TestParm1": "parm1"},
        (ssm("TestParm1", "parm1", FAILOVER),),
        WITH_FAILOVER,
        server_errors=ssm_down(PRIMARY),
    ),
    GoCase(
        f"{SERVER_TEST}: ParameterStore Primary Region 5XX And Secondary Region 4XX Fail",
        objects(("TestParm1", "ssmparameter")),
        "FailedPrecondition",
        (ssm("TestParm1", "parm1", FAILOVER),),
        WITH_FAILOVER,
        server_errors=ssm_down(PRIMARY),
        client_errors=((FAILOVER, "GetParameters", "InvalidKeyId"),),
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Param Fallback Invalid Fail",
        objects(("TestParm1", "ssmparameter"), ("TestParm2", "ssmparameter")),
        {"TestParm1": "parm1", "TestParm2": "parm2"},
        (ssm("TestParm1", "parm1"), ssm("TestParm2", "parm2")),
        WITH_FAILOVER,
        go_expected=f"failure (Invalid parameters: TestParm1, TestParm2): {GO_ASKS_BOTH}",
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Param Fallback 4XX Fail",
        objects(("TestParm1", "ssmparameter"), ("TestParm2", "ssmparameter")),
        {"TestParm1": "parm1", "TestParm2": "parm2"},
        (ssm("TestParm1", "parm1"), ssm("TestParm2", "parm2")),
        WITH_FAILOVER,
        client_errors=((FAILOVER, "GetParameters", "InvalidKeyId"),),
        go_expected=f"failure (InvalidKeyId): {GO_ASKS_BOTH}",
    ),
    GoCase(
        f"{SERVER_TEST}: Multi Region Secrets Fallback 4XX Fail",
        objects(("TestSecret1", "secretsmanager"), ("TestSecret2", "secretsmanager")),
        {"TestSecret1": SECRET1, "TestSecret2": SECRET2},
        (sm("TestSecret1", SECRET1), sm("TestSecret2", SECRET2)),
        WITH_FAILOVER,
        go_expected="failure (Failed to describe secret): once the primary answered, Go also calls "
        f"DescribeSecret in the failover region (the secret is not replicated there). {GO_ASKS_BOTH}",
    ),
    # --- secret_descriptor_test.go: objects that must be refused (no AWS call) or accepted ---
    GoCase(
        "secret_descriptor_test.go: TestNoNamePresent", "- objectType: secretsmanager\n", "InvalidArgument"
    ),
    GoCase("secret_descriptor_test.go: TestNoTypePresent", "- objectName: 'arn::'\n", "InvalidArgument"),
    GoCase(
        "secret_descriptor_test.go: TestUnknownService",
        f"- objectName: arn:aws:sts:{PRIMARY}:123456789012:parameter/feaw\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestSSMWithArn",
        f"- objectName: arn:aws:ssm:{PRIMARY}:123456789012:parameter/feaw\n",
        {f"arn:aws:ssm:{PRIMARY}:123456789012:parameter_feaw": "feaw value"},
        (ssm("feaw", "feaw value"),),
    ),
    GoCase(
        "secret_descriptor_test.go: TestNoObjectTypeWoArn", "- objectName: SomeSecret\n", "InvalidArgument"
    ),
    GoCase(
        "secret_descriptor_test.go: TestInvalidObjectType",
        "- objectName: SomeName\n  objectType: sts\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestSSMObjectType",
        "- objectName: SomeName\n  objectType: ssm\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestObjectTypeMisMatchArn",
        f"- objectName: {SM_ARN}/feaw\n  objectType: ssmparameter\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestSSMBothVersionandLabel",
        "- {objectName: SomeParameter, objectType: ssmparameter, objectVersionLabel: L, objectVersion: V}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestConflictingName",
        objects(("secret1", "ssmparameter"), ("secret1", "ssmparameter")),
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestConflictingAlias",
        "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n"
        "- {objectName: secret2, objectType: ssmparameter, objectAlias: aliasOne}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestConflictingAliasJMES",
        "- {objectName: secret1, objectType: ssmparameter, objectAlias: aliasOne}\n"
        "- {objectName: secret2, objectType: ssmparameter, jmesPath: [{path: u, objectAlias: aliasOne}]}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestMissingAliasJMES",
        "- {objectName: secret2, objectType: ssmparameter, jmesPath: [{path: username}]}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestMissingPathJMES",
        "- {objectName: secret2, objectType: ssmparameter, jmesPath: [{objectAlias: aliasOne}]}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestBadYaml",
        "- objectName: secret1\n  objectType: secretsmanager\n- {\n",
        "InvalidArgument",
    ),
    GoCase("secret_descriptor_test.go: TestErrorYaml", "- objectName: secret1\n", "InvalidArgument"),
    GoCase(
        "secret_descriptor_test.go: TestBadTrans",
        objects(("secret1", "secretsmanager")),
        "InvalidArgument",
        parameters={"pathTranslation": "--"},
    ),
    GoCase(
        "secret_descriptor_test.go: TestTraversal (ssmparameter mypath/../../param)",
        objects(("mypath/../../param", "ssmparameter")),
        "InvalidArgument",
        parameters={"pathTranslation": "False"},
    ),
    GoCase(
        "secret_descriptor_test.go: TestTraversal (secretsmanager ARN secret:mypath/..)",
        f"- objectName: {SM_ARN}mypath/..\n",
        "InvalidArgument",
        parameters={"pathTranslation": "False"},
    ),
    GoCase(
        "secret_descriptor_test.go: TestNotTraversal (ssmparameter mypath../param)",
        objects(("mypath../param", "ssmparameter")),
        {"mypath../param": "p1"},
        (ssm("mypath../param", "p1"),),
        {"pathTranslation": "False"},
    ),
    GoCase(
        "secret_descriptor_test.go: TestNotTraversal (ssmparameter mypath..)",
        objects(("mypath..", "ssmparameter")),
        {"mypath..": "p2"},
        (ssm("mypath..", "p2"),),
        {"pathTranslation": "False"},
    ),
    GoCase(
        "secret_descriptor_test.go: TestNotTraversal (ssmparameter ..mypath)",
        objects(("..mypath", "ssmparameter")),
        "InvalidArgument",
        (ssm("..mypath", "p2"),),
        {"pathTranslation": "False"},
        go_expected="success: Go's descriptor check accepts it, but the driver's own writer refuses a path "
        "starting with '..' (FileWriteError after the fetch), so here it is refused up front",
    ),
    GoCase(
        "secret_descriptor_test.go: TestFallbackObjectRequiresAlias",
        f"- objectName: {SM_ARN}secret1\n  failoverObject: {{objectName: '{FAILOVER_SM_ARN}secret1'}}\n",
        "InvalidArgument",
        parameters=WITH_FAILOVER,
    ),
    GoCase(
        "secret_descriptor_test.go: TestFallbackDataRequiresMultipleRegions",
        f"- objectName: {SM_ARN}secret1\n"
        f"  failoverObject: {{objectName: '{FAILOVER_SM_ARN}secret1'}}\n"
        "  objectAlias: test\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestPrimaryArnRequiresRegionMatch",
        "- objectName: arn:aws:secretsmanager:us-west-1:123456789012:secret:secret1\n  objectAlias: test\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestVersionIdsMustMatch",
        "- objectName: MySecret1\n  objectType: ssmparameter\n  objectVersion: OldVersionId\n"
        "  failoverObject: {objectName: MySecretInAnotherRegion, objectVersion: ADifferentVersionId}\n"
        "  objectAlias: test\n",
        "InvalidArgument",
        parameters=WITH_FAILOVER,
    ),
    GoCase(
        "secret_descriptor_test.go: TestValidateFilePermission (abc9)",
        "- {objectName: foo, objectType: secretsmanager, filePermission: abc9}\n",
        "InvalidArgument",
    ),
    GoCase(
        "secret_descriptor_test.go: TestValidateDescriptorFilePermission (jmesPath efgh)",
        "- {objectName: foo, objectType: secretsmanager, jmesPath: [{path: bar, objectAlias: foobar, "
        "filePermission: efgh}]}\n",
        "InvalidArgument",
    ),
    # --- secret_value_test.go: jmesPath on the fetched value ---
    GoCase(
        "secret_value_test.go: TestNotValidJson",
        JMES_OBJECT.format(path="username", alias="test"),
        "FailedPrecondition",
        (sm("jsonObject", "NotValidJson"),),
    ),
    GoCase(
        "secret_value_test.go: TestJMESPathPointsToInvalidObject",
        JMES_OBJECT.format(path="testpath", alias="testAlias"),
        "FailedPrecondition",
        (sm("jsonObject", CREDS),),
    ),
    GoCase(
        "secret_value_test.go: TestInvalidJMESPath",
        JMES_OBJECT.format(path=".testpath", alias="testAlias"),
        "InvalidArgument",
        (sm("jsonObject", CREDS),),
    ),
    GoCase(
        "secret_value_test.go: TestInvalidJMESResultType",
        JMES_OBJECT.format(path="username", alias="testAlias"),
        "FailedPrecondition",
        (sm("jsonObject", '{"username": 3}'),),
    ),
)


def _request_attributes(case: GoCase, arns: Mapping[str, str]) -> tuple[str, str]:
    """(attributes, secrets) of the driver's MountRequest for the case."""
    spc_objects = _ARN.sub(lambda match: arns[match.group(1)], case.objects)
    parameters = {"objects": spc_objects, **case.parameters}
    if case.region is not None:
        parameters["region"] = case.region
    options = MountOptions(
        target=Path("/var/lib/kubelet/pods/uid-go/volumes/kubernetes.io~csi/secrets/mount"),
        namespace="fakeNS",
        pod="fakePod",
        pod_uid="uid-go",
        service_account="fakeSvcAcc",
        sts_token=jwt("fakeNS", "fakeSvcAcc", "fakePod") if case.cluster is not None else None,
        secrets=json.loads(STATIC) if case.cluster is None else None,
    )
    request = build_request(SecretProviderClass("go-table", parameters), options)
    return request.attributes, request.secrets


def _cluster(case: GoCase, kube: FakeKubeApi) -> None:
    cluster = case.cluster
    assert cluster is not None
    state = kube.state
    state.service_accounts[("fakeNS", "fakeSvcAcc")] = (
        {ROLE_ARN_ANNOTATION: ROLE} if cluster.role_annotation else {}
    )
    if cluster.pod:
        state.pods[("fakeNS", "fakePod")] = NODE
    if cluster.node:
        state.nodes[NODE] = {"topology.kubernetes.io/region": PRIMARY} if cluster.node_region_label else {}


@pytest.fixture(scope="module")
def driverclient() -> Path:
    return driverclient_binary()


@pytest.fixture(scope="module")
def shared_provider(aws_proxy: AwsProxy) -> Iterator[SharedProvider]:
    """One `provider-aws serve` for every case with static credentials: the cases differ only in what
    moto holds and in the request, as Mounts of many pods reach one provider."""
    with shared_serve(aws_proxy.url, SERVE_FLAGS) as provider:
        yield provider


@pytest.mark.asyncio
@pytest.mark.timeout(120)
@pytest.mark.parametrize("case", CASES, ids=[case.source for case in CASES])
async def test_go_table_case(  # noqa: PLR0917 - pytest fixtures and the case
    driverclient: Path,
    shared_provider: SharedProvider,
    aws: ProxyState,
    moto_server: str,
    tmp_path: Path,
    leak_scan: LeakScan,
    case: GoCase,
) -> None:
    arns = store(functools.partial(seed_client, moto_server), case.puts)
    for region, operation in case.server_errors:
        aws.faults[(region, operation)] = Fault(status=500, code="InternalFailure")
    for region, operation, code in case.client_errors:
        aws.faults[(region, operation)] = Fault(status=400, code=code, message="injected 4xx")
    attributes, secrets = _request_attributes(case, arns)
    target = tmp_path / "mount"
    target.mkdir()  # the driver mounts its tmpfs here before calling the provider
    request = MountRequest(
        attributes=attributes, secrets=secrets, target_path=str(target), permission=case.permission
    )
    if case.cluster is None:
        result = await driver_mount(driverclient, shared_provider.socket_dir, request, target)
        leak_scan.add_text(f"{__name__} shared serve log", shared_provider.new_log())
    else:
        # IRSA and the region lookup need the fake cluster: a provider of its own, told where it is.
        kube = FakeKubeApi().start()
        try:
            _cluster(case, kube)
            env = serve_env() | {"KUBECONFIG": str(kube.write_kubeconfig(tmp_path / "kubeconfig"))}
            with short_socket_dir() as socket_dir:
                async with serve_process(socket_dir, tmp_path / "serve.log", SERVE_FLAGS, env):
                    result = await driver_mount(driverclient, socket_dir, request, target)
        finally:
            kube.stop()
            if (tmp_path / "serve.log").exists():
                leak_scan.add_text(f"{__name__} serve log", (tmp_path / "serve.log").read_bytes())
    leak_scan.add_text(f"{__name__} driverclient", result.stderr + result.message)

    if isinstance(case.expect, str):
        assert (result.status_code, result.error_code) == (case.expect, "GRPCProviderError"), result.message
        assert result.object_versions is None
        assert list(target.iterdir()) == []
        if case.expect == "InvalidArgument" and not case.client_errors:
            assert aws.count() == 0  # refused before any AWS request
    else:
        assert (result.status_code, result.error_code) == ("OK", ""), result.message
        tree = written_tree(target)
        files = {path: entry for path, entry in tree.items() if entry.kind == "file"}
        assert {path: entry.contents for path, entry in files.items()} == {
            path: value.encode() for path, value in case.expect.items()
        }
        assert {entry.mode for entry in files.values()} == {0o644}
        assert result.object_versions is not None and set(result.object_versions) <= set(files)


def test_the_readme_counts_the_cases_and_names_every_difference() -> None:
    """The README's numbers are these cases' numbers, and each deliberate difference names its Go test."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("## Test suites") : readme.index("## Benchmarks")]
    differing = [case for case in CASES if case.go_expected]
    assert f"{len(CASES)} cases" in section
    assert f"{len(CASES) - len(differing)} end as the Go test expects" in section
    assert f"{len(differing)} differ from what their Go test states" in section
    for case in differing:
        go_test = case.source.split(": ", 1)[1].split(" (")[0]
        assert f"`{go_test}`" in section, go_test


def version_id(name: str, n: int) -> str:
    """A Secrets Manager VersionId we choose (ClientRequestToken: 32 to 64 characters)."""
    return f"{name}-{n}".ljust(32, "0")


REMOUNT_OBJECTS = """\
- {{objectName: TestSecret1, objectType: secretsmanager}}
- {{objectName: TestSecret2, objectType: secretsmanager, objectVersionLabel: custom}}
- {{objectName: TestSecret3, objectType: secretsmanager, objectVersion: {secret3_version}}}
- objectName: TestSecretJSON
  objectType: secretsmanager
  jmesPath: [{{path: username, objectAlias: username}}]
- {{objectName: TestParm1, objectType: ssmparameter, objectVersionLabel: current}}
- {{objectName: TestParm2, objectType: ssmparameter, objectVersion: "{parm2_version}"}}
""" + "".join(f"- {{{{objectName: TestParm{i}, objectType: ssmparameter}}}}\n" for i in range(3, 12))


def remount_request(target: Path, secret3: int, parm2: int) -> MountRequest:
    spc = SecretProviderClass(
        "go-remount",
        {
            "objects": REMOUNT_OBJECTS.format(
                secret3_version=version_id("TestSecret3", secret3), parm2_version=parm2
            ),
            "region": PRIMARY,
        },
    )
    options = MountOptions(target=target, namespace="fakeNS", pod="fakePod", secrets=json.loads(STATIC))
    return build_request(spc, options)


@pytest.mark.asyncio
@pytest.mark.timeout(180)
async def test_go_remount_sequence(
    driverclient: Path, shared_provider: SharedProvider, aws: ProxyState, moto_server: str, tmp_path: Path
) -> None:
    """server_test.go TestReMounts: Initial Mount, No Change, Rotation1, Move Labels1, Move Version, each
    Mount sending the versions of the one before, through the driver's client. Each step must write the
    files the Go test expects, and an object's version must change exactly when its file does.

    Not carried over: in Move Labels1 the Go mock answers version 2 for TestParm2, pinned to version 1;
    SSM answers the pinned version, so the file stays "parm2 v1" until Move Version pins version 2."""
    sm_client = seed_client(moto_server, "secretsmanager", PRIMARY)
    ssm_client = seed_client(moto_server, "ssm", PRIMARY)

    def put_secret(name: str, n: int, value: str, *, binary: bool = False, create: bool = False) -> None:
        body = {"SecretBinary": value.encode()} if binary else {"SecretString": value}
        token = version_id(name, n)
        if create:
            sm_client.create_secret(Name=name, ClientRequestToken=token, **body)
        else:
            sm_client.put_secret_value(SecretId=name, ClientRequestToken=token, **body)

    def put_parm(i: int, value: str) -> int:
        return int(
            ssm_client.put_parameter(Name=f"TestParm{i}", Value=value, Type="String", Overwrite=True)[
                "Version"
            ]
        )

    def label_custom(version: int, *, moved_from: int | None = None) -> None:
        moves = {"MoveToVersionId": version_id("TestSecret2", version)}
        if moved_from is not None:
            moves["RemoveFromVersionId"] = version_id("TestSecret2", moved_from)
        sm_client.update_secret_version_stage(SecretId="TestSecret2", VersionStage="custom", **moves)

    user = '{{"username": "SecretsManagerUser{}", "password": "SecretsManagerPassword"}}'
    put_secret("TestSecret1", 1, "TestSecret1 v1", binary=True, create=True)
    put_secret("TestSecret2", 1, "TestSecret2 v1", create=True)
    label_custom(1)
    put_secret("TestSecret3", 1, "TestSecret3 v1", create=True)
    put_secret("TestSecretJSON", 1, user.format(""), create=True)
    for i in range(1, 12):
        put_parm(i, f"parm{i} v1")
    ssm_client.label_parameter_version(Name="TestParm1", ParameterVersion=1, Labels=["current"])

    files_v1 = {
        "TestSecret1": "TestSecret1 v1",
        "TestSecret2": "TestSecret2 v1",
        "TestSecret3": "TestSecret3 v1",
        "TestSecretJSON": user.format(""),
        "username": "SecretsManagerUser",
    } | {f"TestParm{i}": f"parm{i} v1" for i in range(1, 12)}
    rotation1 = (
        files_v1
        | {
            "TestSecret1": "TestSecret1 v2",
            "TestSecretJSON": user.format("2"),
            "username": "SecretsManagerUser2",
        }
        | {f"TestParm{i}": f"parm{i} v2" for i in (1, *range(4, 12))}
    )
    move_labels = rotation1 | {"TestSecret2": "TestSecret2 v2"}
    move_version = move_labels | {
        "TestSecret3": "TestSecret3 v2",
        "TestParm2": "parm2 v2",
        "TestParm3": "parm3 v2",
    }

    target = tmp_path / "mount"
    target.mkdir()
    versions: dict[str, str] = {}
    changes: dict[str, set[str]] = {}  # step -> ids whose version changed

    async def mount(step: str, expected: dict[str, str], *, secret3: int = 1, parm2: int = 1) -> None:
        before = dict(versions)
        request = remount_request(target, secret3, parm2)
        result = await driver_mount(
            driverclient, shared_provider.socket_dir, request, target, current=versions
        )
        assert (result.status_code, result.error_code) == ("OK", ""), (step, result.message)
        assert result.object_versions is not None
        tree = written_tree(target)
        assert {path: entry.contents for path, entry in tree.items()} == {
            path: value.encode() for path, value in expected.items()
        }, step
        versions.clear()
        versions.update(result.object_versions)
        changed = {key for key in versions if before.get(key) != versions[key]} if before else set(versions)
        changes[step] = changed

    await mount("Initial Mount Success", files_v1)
    aws_before = dict(aws.operations())
    await mount("No Change Success", files_v1)
    no_change_calls = {
        op: n - aws_before.get(op, 0) for op, n in aws.operations().items() if n != aws_before.get(op, 0)
    }

    put_secret("TestSecret1", 2, "TestSecret1 v2", binary=True)
    put_secret("TestSecret2", 2, "TestSecret2 v2")
    label_custom(1)  # moto drops other labels from the previous version on PutSecretValue; AWS keeps them
    put_secret("TestSecretJSON", 2, user.format("2"))
    for i in (1, 2, *range(4, 12)):
        put_parm(i, f"parm{i} v2")
    ssm_client.label_parameter_version(Name="TestParm1", ParameterVersion=2, Labels=["current"])
    await mount("Rotation1 Success", rotation1)

    label_custom(2, moved_from=1)
    await mount("Move Labels1 Success", move_labels)

    put_secret("TestSecret3", 2, "TestSecret3 v2")
    put_parm(3, "parm3 v2")
    await mount("Move Version Success", move_version, secret3=2, parm2=2)

    assert changes["No Change Success"] == set()
    assert changes["Rotation1 Success"] == {
        "TestSecret1",
        "TestSecretJSON",
        "username",
        "TestParm1",
        *(f"TestParm{i}" for i in range(4, 12)),
    }
    assert changes["Move Labels1 Success"] == {"TestSecret2"}
    assert changes["Move Version Success"] == {"TestSecret3", "TestParm2", "TestParm3"}
    # As in the Go test ("should be describe only"): an unchanged rotation reads no secret value; one
    # DescribeSecret per unpinned secret (the pinned TestSecret3 needs none); SSM versions come with values.
    assert no_change_calls == {"DescribeSecret": 3, "GetParameters": 2}
