"""The named cases of `make compat`: each seeds moto and the fake cluster, then mounts step by step.

Groups: the Go project's own test tables (re-expressed in tests/test_driver_client_go_tables.py), its
end-to-end SecretProviderClass (its tests directory's BasicTestMountSPC template), the seed's exact requests,
rotation sequences, failover with faults injected per region and per kind, and Pod Identity with the
agent answering on one address family only. Every case uses IRSA or Pod Identity: the Go provider has no
static credentials (`nodePublishSecretRef`).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from provider_aws.identity.credentials import ROLE_ARN_ANNOTATION
from provider_aws.identity.regions import REGION_LABEL
from testkit.awsobjects import Put
from testkit.awsproxy import Fault
from testkit.identity import POD_IDENTITY, ROLE, jwt
from tests.compat.rig import (
    FAILOVER,
    PRIMARY,
    SM_OPERATIONS,
    SSM_OPERATIONS,
    Pod,
    Rig,
    StepOutcome,
    attributes_for,
    objects_yaml,
    versions_of,
)
from tests.test_driver_client_go_tables import CASES as GO_TABLE_CASES
from tests.test_driver_client_go_tables import GoCase

__all__ = ["CASES", "Case"]

Run = Callable[[Rig, str], Awaitable[list[StepOutcome]]]


@dataclass(frozen=True)
class Case:
    id: str
    group: str
    run: Run
    tags: frozenset[str] = field(default_factory=frozenset)


# --- the Go project's test tables ---------------------------------------------------------------

_ARN = re.compile(r"\{arn:([^}]+)\}")


def _go_table(case: GoCase) -> Run:
    async def run(rig: Rig, case_id: str) -> list[StepOutcome]:
        arns = rig.store(case.puts)
        cluster = case.cluster
        if cluster is None:
            pod = rig.new_pod()
        elif not cluster.pod:
            pod = rig.new_pod(role=cluster.role_annotation)
        elif not cluster.node:
            pod = rig.new_pod(role=cluster.role_annotation, node=f"absent-{rig.cases_run}", region_label=None)
        elif not cluster.node_region_label:
            pod = rig.new_pod(role=cluster.role_annotation, node=f"bare-{rig.cases_run}", region_label="")
        else:
            pod = rig.new_pod(role=cluster.role_annotation, node=f"node-{rig.cases_run}")
        for region, operation in case.server_errors:
            rig.fault(region, (operation,), Fault(status=500, code="InternalFailure"))
        for region, operation, code in case.client_errors:
            rig.fault(region, (operation,), Fault(status=400, code=code, message="injected 4xx"))
        parameters = {
            "objects": _ARN.sub(lambda match: arns[match.group(1)], case.objects),
            **case.parameters,
        }
        if case.region is not None:
            parameters["region"] = case.region
        attributes = attributes_for(pod, parameters)
        return [await rig.both(case_id, "mount", attributes, permission=case.permission)]

    return run


def _go_table_cases() -> list[Case]:
    return [
        Case(
            f"go table: {case.source}",
            "Go test tables",
            _go_table(case),
            frozenset({"go-table", *(("failover",) if "failoverRegion" in case.parameters else ())}),
        )
        for case in GO_TABLE_CASES
    ]


# --- the Go project's end-to-end SecretProviderClass ------------------------------------------------

E2E_SUFFIX = "amd64-irsa"


def _e2e_objects(account: str) -> str:
    s = E2E_SUFFIX
    return f"""\
- objectName: "ParameterStoreTest1-{s}"
  objectType: "ssmparameter"
- objectName: "ParameterStoreTestWithLongName-{s}"
  objectAlias: "ParameterStoreTest2"
  objectType: "ssmparameter"
- objectName: "ParameterStoreRotationTest-{s}"
  objectType: "ssmparameter"
- objectName: "SecretsManagerRotationTest-{s}"
  objectType: "secretsmanager"
- objectName: "SecretsManagerTest1-{s}"
  objectType: "secretsmanager"
- objectName: arn:aws:secretsmanager:{PRIMARY}:{account}:secret:SecretsManagerTest2-{s}
  objectAlias: "SecretsManagerTest2"
  failoverObject:
    objectName: arn:aws:secretsmanager:{FAILOVER}:{account}:secret:SecretsManagerTest2-{s}
- objectName: "SecretsManagerSync-{s}"
  objectType: "secretsmanager"
- objectName: "jsonSsm-{s}"
  objectType: "ssmparameter"
  jmesPath:
      - Path: "username"
        ObjectAlias: "ssmUsername"
      - Path: "password"
        ObjectAlias: "ssmPassword"
- objectName: "secretsManagerJson-{s}"
  objectType: "secretsmanager"
  jmesPath:
      - Path: "username"
        ObjectAlias: "secretsManagerUsername"
      - Path: "password"
        ObjectAlias: "secretsManagerPassword"
"""


def _e2e(pod_identity: bool) -> Run:
    """Objects in both regions (as its suite replicates them), mounted, then its rotation objects
    rotated and mounted again with the versions of the first Mount."""

    async def run(rig: Rig, case_id: str) -> list[StepOutcome]:
        s = E2E_SUFFIX
        login = json.dumps({"username": "ParameterStoreUser", "password": "PasswordForParameterStore"})
        sm_login = json.dumps({"username": "SecretsManagerUser", "password": "PasswordForSecretsManager"})
        puts = []
        for region in (PRIMARY, FAILOVER):
            puts += [
                Put("parameter", f"ParameterStoreTest1-{s}", "ParameterStoreTest1Value", region),
                Put("parameter", f"ParameterStoreTestWithLongName-{s}", "ParameterStoreTest2Value", region),
                Put("parameter", f"ParameterStoreRotationTest-{s}", "BeforeRotation", region),
                Put("secret", f"SecretsManagerRotationTest-{s}", "BeforeRotation", region),
                Put("secret", f"SecretsManagerTest1-{s}", "SecretsManagerTest1Value", region),
                Put("secret", f"SecretsManagerTest2-{s}", "SecretsManagerTest2Value", region),
                Put("secret", f"SecretsManagerSync-{s}", "SecretUser", region),
                Put("parameter", f"jsonSsm-{s}", login, region),
                Put("secret", f"secretsManagerJson-{s}", sm_login, region),
            ]
        rig.store(puts)
        pod = rig.new_pod()
        parameters = {"region": PRIMARY, "failoverRegion": FAILOVER, "objects": _e2e_objects("123456789012")}
        if pod_identity:
            parameters["usePodIdentity"] = "true"
            for agent in rig.agents.values():
                agent.state.accept(_pod_identity_token(pod), "AKIDPODIDENTITY")
        attributes = attributes_for(pod, parameters)
        first = await rig.both(case_id, "mount", attributes)
        for region in (PRIMARY, FAILOVER):
            rig.seed_client("ssm", region).put_parameter(
                Name=f"ParameterStoreRotationTest-{s}", Value="AfterRotation", Type="String", Overwrite=True
            )
            rig.seed_client("secretsmanager", region).put_secret_value(
                SecretId=f"SecretsManagerRotationTest-{s}", SecretString="AfterRotation"
            )
        second = await rig.both(case_id, "rotation", attributes, current=versions_of(first))
        return [first, second]

    return run


def _pod_identity_token(pod: Pod) -> str:
    return jwt(pod.namespace, pod.service_account, pod.name, POD_IDENTITY)


# --- the seed's exact requests ---------------------------------------------------------------------

DATA = Path(__file__).resolve().parents[1] / "data"
SEED_ARNS = (
    "arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret-00AACC",
    "arn:aws:secretsmanager:eu-west-1:[111122223333]:secret:MySecret2-00AABB",
)


async def _seed(rig: Rig, case_id: str) -> list[StepOutcome]:
    """tests/data's first mount and rotation reconcile: no region parameter (pod -> node lookup), IRSA
    for default/default; the placeholder ARNs swapped for moto's."""
    my_secret = json.dumps({"user": {"username": "john.doe", "password": "123456"}})
    arns = rig.store([Put("secret", "MySecret", my_secret), Put("secret", "MySecret2", "MySecret2 value")])
    first = json.loads((DATA / "seed_first_mount.json").read_text())
    attributes = json.loads(first["attributes"])
    namespace, pod_name = (
        attributes["csi.storage.k8s.io/pod.namespace"],
        attributes["csi.storage.k8s.io/pod.name"],
    )
    account = attributes["csi.storage.k8s.io/serviceAccount.name"]
    state = rig.kube.state
    with state.lock:
        state.service_accounts[(namespace, account)] = {ROLE_ARN_ANNOTATION: ROLE}
        state.pods[(namespace, pod_name)] = "seed-node"
        state.nodes["seed-node"] = {REGION_LABEL: PRIMARY}

    def swapped(name: str) -> str:
        text = json.loads((DATA / name).read_text())["attributes"]
        for placeholder, arn in zip(SEED_ARNS, (arns["MySecret"], arns["MySecret2"]), strict=True):
            text = text.replace(placeholder, arn)
        return str(text)

    mounted = await rig.both(case_id, "first mount", swapped("seed_first_mount.json"))
    rig.seed_client("secretsmanager", PRIMARY).put_secret_value(SecretId="MySecret2", SecretString="rotated")
    rotated = await rig.both(case_id, "rotation", swapped("seed_rotation.json"), current=versions_of(mounted))
    return [mounted, rotated]


# --- rotation sequences ----------------------------------------------------------------------------


def token(name: str, n: int) -> str:
    return f"{name}-{n}".ljust(32, "0")


async def _rotation_plain(rig: Rig, case_id: str) -> list[StepOutcome]:
    """Secrets (string, binary, JSON with jmesPath, a custom label), parameters (plain, labelled): first
    Mount, an unchanged poll, new values, a moved label, a deleted secret, each sending the last versions."""
    sm, ssm = rig.seed_client("secretsmanager", PRIMARY), rig.seed_client("ssm", PRIMARY)
    user = '{{"username": "user{}", "password": "pw"}}'
    rig.store(
        [
            Put("secret", "rot/plain", "plain v1", token="rot/plain-1".ljust(32, "0")),
            Put("binary", "rot/binary", "binary v1"),
            Put("secret", "rot/json", user.format(1)),
            Put("secret", "rot/labelled", "labelled v1", token=token("rot/labelled", 1)),
            Put("parameter", "/rot/p1", "p1 v1"),
            Put("parameter", "/rot/p2", "p2 v1"),
        ]
    )
    sm.update_secret_version_stage(
        SecretId="rot/labelled", VersionStage="custom", MoveToVersionId=token("rot/labelled", 1)
    )
    ssm.label_parameter_version(Name="/rot/p2", ParameterVersion=1, Labels=["stable"])
    objects = objects_yaml(
        [
            {"objectName": "rot/plain", "objectType": "secretsmanager"},
            {"objectName": "rot/binary", "objectType": "secretsmanager"},
            {
                "objectName": "rot/json",
                "objectType": "secretsmanager",
                "jmesPath": [{"path": "username", "objectAlias": "user"}],
            },
            {"objectName": "rot/labelled", "objectType": "secretsmanager", "objectVersionLabel": "custom"},
            {"objectName": "/rot/p1", "objectType": "ssmparameter"},
            {"objectName": "/rot/p2", "objectType": "ssmparameter", "objectVersionLabel": "stable"},
        ]
    )
    attributes = attributes_for(rig.new_pod(), {"region": PRIMARY, "objects": objects})
    steps = [await rig.both(case_id, "first mount", attributes)]
    steps.append(await rig.both(case_id, "unchanged poll", attributes, current=versions_of(steps[-1])))
    sm.put_secret_value(SecretId="rot/plain", SecretString="plain v2")
    sm.put_secret_value(SecretId="rot/binary", SecretBinary=b"binary v2")
    sm.put_secret_value(SecretId="rot/json", SecretString=user.format(2))
    sm.put_secret_value(
        SecretId="rot/labelled", SecretString="labelled v2", ClientRequestToken=token("rot/labelled", 2)
    )
    sm.update_secret_version_stage(
        SecretId="rot/labelled", VersionStage="custom", MoveToVersionId=token("rot/labelled", 1)
    )
    ssm.put_parameter(Name="/rot/p1", Value="p1 v2", Type="String", Overwrite=True)
    ssm.put_parameter(Name="/rot/p2", Value="p2 v2", Type="String", Overwrite=True)
    steps.append(await rig.both(case_id, "new values", attributes, current=versions_of(steps[-1])))
    sm.update_secret_version_stage(
        SecretId="rot/labelled",
        VersionStage="custom",
        MoveToVersionId=token("rot/labelled", 2),
        RemoveFromVersionId=token("rot/labelled", 1),
    )
    ssm.label_parameter_version(Name="/rot/p2", ParameterVersion=2, Labels=["stable"])
    steps.append(await rig.both(case_id, "labels moved", attributes, current=versions_of(steps[-1])))
    steps.append(await rig.both(case_id, "unchanged again", attributes, current=versions_of(steps[-1])))
    sm.delete_secret(SecretId="rot/plain", ForceDeleteWithoutRecovery=True)
    steps.append(await rig.both(case_id, "secret deleted", attributes, current=versions_of(steps[-1])))
    return steps


async def _rotation_pinned(rig: Rig, case_id: str) -> list[StepOutcome]:
    """Pinned versions (objectVersion) moved forward between Mounts, for a secret and a parameter."""
    sm = rig.seed_client("secretsmanager", PRIMARY)
    ssm = rig.seed_client("ssm", PRIMARY)
    rig.store([Put("secret", "pin/s", "s v1", token=token("pin/s", 1)), Put("parameter", "pin-p", "p v1")])
    sm.put_secret_value(SecretId="pin/s", SecretString="s v2", ClientRequestToken=token("pin/s", 2))
    ssm.put_parameter(Name="pin-p", Value="p v2", Type="String", Overwrite=True)

    def attributes(n: int) -> str:
        objects = objects_yaml(
            [
                {"objectName": "pin/s", "objectType": "secretsmanager", "objectVersion": token("pin/s", n)},
                {"objectName": "pin-p", "objectType": "ssmparameter", "objectVersion": str(n)},
            ]
        )
        return attributes_for(pod, {"region": PRIMARY, "objects": objects})

    pod = rig.new_pod()
    steps = [await rig.both(case_id, "pinned to 1", attributes(1))]
    steps.append(await rig.both(case_id, "pinned to 1 again", attributes(1), current=versions_of(steps[-1])))
    steps.append(await rig.both(case_id, "pinned to 2", attributes(2), current=versions_of(steps[-1])))
    return steps


async def _rotation_failover(rig: Rig, case_id: str) -> list[StepOutcome]:
    """A rotation poll while the primary region answers 5xx: the failover region's copy, then back."""
    rig.store(
        [
            Put("secret", "fo/s", "primary value"),
            Put("secret", "fo/s", "failover value", FAILOVER),
            Put("parameter", "fo-p", "primary p"),
            Put("parameter", "fo-p", "failover p", FAILOVER),
        ]
    )
    objects = objects_yaml(
        [
            {"objectName": "fo/s", "objectType": "secretsmanager"},
            {"objectName": "fo-p", "objectType": "ssmparameter"},
        ]
    )
    attributes = attributes_for(
        rig.new_pod(), {"region": PRIMARY, "failoverRegion": FAILOVER, "objects": objects}
    )
    steps = [await rig.both(case_id, "both regions up", attributes)]
    rig.fault(PRIMARY, SM_OPERATIONS + SSM_OPERATIONS, Fault(status=503, code="ServiceUnavailable"))
    steps.append(await rig.both(case_id, "primary 503", attributes, current=versions_of(steps[-1])))
    rig.proxy.state.faults.clear()
    steps.append(await rig.both(case_id, "primary back", attributes, current=versions_of(steps[-1])))
    return steps


async def _ssm_root_names(rig: Rig, case_id: str) -> list[StepOutcome]:
    """Root-level SSM parameters created as `name` and as `/name`, each asked for the other way round
    (SSM takes both spellings for one root-level parameter)."""
    rig.store(
        [Put("parameter", "plainroot", "created plain"), Put("parameter", "/slashroot", "created slashed")]
    )
    objects = objects_yaml(
        [
            {"objectName": "/plainroot", "objectType": "ssmparameter"},
            {"objectName": "slashroot", "objectType": "ssmparameter"},
        ]
    )
    attributes = attributes_for(rig.new_pod(), {"region": PRIMARY, "objects": objects})
    return [await rig.both(case_id, "mount", attributes)]


# --- failover with faults ----------------------------------------------------------------------------

FAULTS: Mapping[str, Callable[[str], Fault]] = {
    "5xx": lambda service: Fault(status=500, code="InternalFailure"),
    "4xx": lambda service: Fault(
        status=400,
        code="InvalidKeyId" if service == "ssm" else "InvalidRequestException",
        message="injected 4xx",
    ),
    "access denied": lambda service: Fault(
        status=400, code="AccessDeniedException", message="injected denial"
    ),
    "throttling": lambda service: Fault(status=400, code="ThrottlingException", message="Rate exceeded"),
}
PLACEMENTS: Mapping[str, tuple[str, ...]] = {
    "primary": (PRIMARY,),
    "failover": (FAILOVER,),
    "both regions": (PRIMARY, FAILOVER),
}


def _failover(kind: str, placement: str, service: str) -> Run:
    async def run(rig: Rig, case_id: str) -> list[StepOutcome]:
        puts = []
        for region in (PRIMARY, FAILOVER):
            puts += [
                Put("secret", "app/one", f"one from {region}", region),
                Put("secret", "app/two", f"two from {region}", region),
                Put("parameter", "app-p1", f"p1 from {region}", region),
                Put("parameter", "app-p2", f"p2 from {region}", region),
            ]
        rig.store(puts)
        operations = SSM_OPERATIONS if service == "ssm" else SM_OPERATIONS
        for region in PLACEMENTS[placement]:
            rig.fault(region, operations, FAULTS[kind](service))
        objects = objects_yaml(
            [
                {"objectName": "app/one", "objectType": "secretsmanager"},
                {"objectName": "app/two", "objectType": "secretsmanager"},
                {"objectName": "app-p1", "objectType": "ssmparameter"},
                {"objectName": "app-p2", "objectType": "ssmparameter"},
            ]
        )
        parameters = {"region": PRIMARY, "failoverRegion": FAILOVER, "objects": objects}
        attributes = attributes_for(rig.new_pod(), parameters)
        first = await rig.both(case_id, "mount", attributes)
        if not (first.ours.ok and first.go.ok):
            return [first]
        return [first, await rig.both(case_id, "rotation poll", attributes, current=versions_of(first))]

    return run


SERVICE_NAMES = {"secretsmanager": "Secrets Manager", "ssm": "SSM"}


def _failover_cases() -> list[Case]:
    return [
        Case(
            f"failover: {kind} from {SERVICE_NAMES[service]} in {placement}",
            "failover with injected faults",
            _failover(kind, placement, service),
            frozenset({"failover", f"fault:{kind}", f"placement:{placement}", f"service:{service}"}),
        )
        for service in ("secretsmanager", "ssm")
        for kind in FAULTS
        for placement in PLACEMENTS
    ]


# --- Pod Identity, the agent answering on one address family ---------------------------------------


def _pod_identity(preference: str, down: str) -> Run:
    async def run(rig: Rig, case_id: str) -> list[StepOutcome]:
        rig.store([Put("secret", "pi/s", "pod identity value"), Put("parameter", "pi-p", "pod identity p")])
        pod = rig.new_pod(role=False)
        for family, agent in rig.agents.items():
            agent.state.accept(_pod_identity_token(pod), f"AKIDPODID{family.upper()}")
            agent.state.fail_status = 503 if family == down else None
        parameters = {
            "region": PRIMARY,
            "usePodIdentity": "true",
            "objects": objects_yaml(
                [
                    {"objectName": "pi/s", "objectType": "secretsmanager"},
                    {"objectName": "pi-p", "objectType": "ssmparameter"},
                ]
            ),
        }
        if preference:
            parameters["preferredAddressType"] = preference
        try:
            return [await rig.both(case_id, "mount", attributes_for(pod, parameters))]
        finally:
            for agent in rig.agents.values():
                agent.state.fail_status = None

    return run


def _pod_identity_cases() -> list[Case]:
    return [
        Case(
            f"pod identity: preferredAddressType {preference or 'unset'}, agent down on {down or 'neither'}",
            "Pod Identity, agent down on one address family",
            _pod_identity(preference, down),
            frozenset({"pod-identity", f"down:{down or 'none'}", f"preference:{preference or 'unset'}"}),
        )
        for preference in ("", "auto", "ipv4", "ipv6")
        for down in ("", "ipv4", "ipv6")
    ]


CASES: tuple[Case, ...] = (
    *_go_table_cases(),
    Case(
        "Go e2e SecretProviderClass, IRSA",
        "Go e2e SecretProviderClass",
        _e2e(False),
        frozenset({"e2e", "failover"}),
    ),
    Case(
        "Go e2e SecretProviderClass, Pod Identity",
        "Go e2e SecretProviderClass",
        _e2e(True),
        frozenset({"e2e", "failover", "pod-identity"}),
    ),
    Case("seed: first mount and rotation", "seed", _seed, frozenset({"seed"})),
    Case(
        "rotation: values, labels, deletion", "rotation sequences", _rotation_plain, frozenset({"rotation"})
    ),
    Case("rotation: pinned versions moved", "rotation sequences", _rotation_pinned, frozenset({"rotation"})),
    Case(
        "rotation: primary down between polls",
        "rotation sequences",
        _rotation_failover,
        frozenset({"rotation", "failover"}),
    ),
    Case(
        "SSM root-level names asked the other way round",
        "rotation sequences",
        _ssm_root_names,
        frozenset({"ssm-root"}),
    ),
    *_failover_cases(),
    *_pod_identity_cases(),
)
