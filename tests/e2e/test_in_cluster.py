"""The provider in-cluster, under the RBAC that the chart and the installer manifests grant.

Each case installs the provider's objects on the real API server (the chart with `helm install`, or
manifests/base applied), mints the provider ServiceAccount's token through TokenRequest and runs
`provider-aws serve` with the container's rendered args and env and a pod's in-cluster configuration
(testkit.incluster). Mounts come from a real Pod on a real Node with a real, IRSA-annotated
ServiceAccount, whose STS token is a TokenRequest token bound to that Pod; the secret lives in moto.

Least privilege: the audit log shows every request the provider made, each allowed; a
SelfSubjectRulesReview with the provider's own token shows it may do exactly those and nothing more.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube.models.authorization_v1 import SelfSubjectRulesReviewSpec
from lightkube.models.core_v1 import Container, NodeSpec, PodSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authorization_v1 import SelfSubjectRulesReview
from lightkube.resources.core_v1 import Namespace, Node, Pod, ServiceAccount

from provider_aws.identity.credentials import ROLE_ARN_ANNOTATION
from testkit.awsproxy import ProxyState
from testkit.cluster import Cluster
from testkit.grpc_clients import GrpcioProviderClient, short_socket_dir
from testkit.helm import CHART, Helm
from testkit.identity import ROLE
from testkit.incluster import container_command, in_cluster_provider
from testkit.leakscan import LeakScan
from testkit.requests import REGION, pod_attributes
from tests.conftest import seed_client

ROOT = Path(__file__).resolve().parents[2]
MANIFESTS = ROOT / "manifests" / "base"
PROVIDER_NAMESPACE = "kube-system"
APP_NAMESPACE, APP_ACCOUNT, APP_POD, NODE = "shop", "web", "web-0", "node-1"
# Distinct enough that the session-wide leak scan never meets it in an unrelated log line.
SECRET_VALUE = "in-cluster-value-5be1"
OBJECTS = "- objectName: in-cluster\n  objectType: secretsmanager\n"
# What the API server lets every authenticated user do (system:basic-user): not the provider's grant.
BASIC = {
    ("create", "selfsubjectaccessreviews"),
    ("create", "selfsubjectrulesreviews"),
    ("create", "selfsubjectreviews"),
}
SERVICEACCOUNTS, NODES, PODS = ("get", "serviceaccounts"), ("get", "nodes"), ("get", "pods")

# case -> (installed from, chart values, the requests a Mount without a region makes = the grant)
CASES: dict[str, tuple[str, tuple[str, ...], set[tuple[str, str]]]] = {
    "chart, awsRegion set": ("chart", ("--set", f"awsRegion={REGION}"), {SERVICEACCOUNTS}),
    "chart, defaults (NODE_NAME)": ("chart", (), {SERVICEACCOUNTS, NODES}),
    "chart, setNodeName false": ("chart", ("--set", "setNodeName=false"), {SERVICEACCOUNTS, NODES, PODS}),
    "manifests": ("manifests", (), {SERVICEACCOUNTS, NODES}),
}


@pytest.fixture(scope="module")
def app_pod(cluster: Cluster) -> tuple[str, str]:
    """A Node labelled with its region and a Pod on it whose ServiceAccount carries an IRSA role."""
    cluster.apply(
        [
            Namespace(metadata=ObjectMeta(name=APP_NAMESPACE)),
            ServiceAccount(
                metadata=ObjectMeta(
                    name=APP_ACCOUNT, namespace=APP_NAMESPACE, annotations={ROLE_ARN_ANNOTATION: ROLE}
                )
            ),
            Node(
                metadata=ObjectMeta(name=NODE, labels={"topology.kubernetes.io/region": REGION}),
                spec=NodeSpec(),
            ),
        ]
    )
    pod = cluster.admin.create(
        Pod(
            metadata=ObjectMeta(name=APP_POD, namespace=APP_NAMESPACE),
            spec=PodSpec(
                nodeName=NODE,
                serviceAccountName=APP_ACCOUNT,
                containers=[Container(name="app", image="registry.example/app:1")],
            ),
        )
    )
    assert pod.metadata is not None and pod.metadata.uid
    return APP_POD, pod.metadata.uid


def installed_daemonset(case: str, helm: Helm, cluster: Cluster, release: str) -> dict[str, Any]:
    """Install the provider's objects; the DaemonSet as rendered."""
    source, values, _ = CASES[case]
    if source == "chart":
        helm.run("install", release, str(CHART), "-n", PROVIDER_NAMESPACE, *values)
        objects = helm.manifest(release, PROVIDER_NAMESPACE)
    else:
        listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
        text = "---\n".join((MANIFESTS / name).read_text() for name in listed)
        cluster.apply(text)
        objects = [doc for doc in yaml.safe_load_all(text) if doc]
    (daemonset,) = [obj for obj in objects if obj["kind"] == "DaemonSet"]
    return daemonset


@pytest.fixture
def release(helm: Helm, cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"prov-{request.node.callspec.indices['case']}"
    yield name
    if CASES[request.node.callspec.params["case"]][0] == "chart":
        helm.run("uninstall", name, "-n", PROVIDER_NAMESPACE, check=False)
    else:
        listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
        for name_ in listed:
            for obj in cluster.apply((MANIFESTS / name_).read_text()):
                cluster.admin.delete(type(obj), obj.metadata.name, namespace=obj.metadata.namespace)


def granted(cluster: Cluster, token: str) -> set[tuple[str, str]]:
    """What the token's user may do on resources (in the app namespace and cluster-wide)."""
    with cluster.client_as(token) as client:
        review = client.create(
            SelfSubjectRulesReview(spec=SelfSubjectRulesReviewSpec(namespace=APP_NAMESPACE))
        )
    assert review.status is not None and not review.status.incomplete
    found = set()
    for rule in review.status.resourceRules:
        assert not rule.resourceNames, rule
        found |= {(verb, resource) for verb in rule.verbs for resource in rule.resources or []}
    return found - BASIC


@pytest.mark.parametrize("case", CASES)
def test_mounts_in_cluster_with_exactly_the_granted_requests(  # noqa: PLR0917 - pytest fixtures
    case: str,
    cluster: Cluster,
    helm: Helm,
    release: str,
    app_pod: tuple[str, str],
    aws: ProxyState,
    moto_server: str,
    tmp_path: Path,
    leak_scan: LeakScan,
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(
        Name="in-cluster", SecretString=SECRET_VALUE
    )
    daemonset = installed_daemonset(case, helm, cluster, release)
    account = daemonset["spec"]["template"]["spec"]["serviceAccountName"]
    user = f"system:serviceaccount:{PROVIDER_NAMESPACE}:{account}"
    provider_token = cluster.token(PROVIDER_NAMESPACE, account)
    pod_token = cluster.token(APP_NAMESPACE, APP_ACCOUNT, audiences=["sts.amazonaws.com"], pod=app_pod)
    leak_scan.add_value("provider token", provider_token)
    leak_scan.add_value("pod token", pod_token)
    already = len(cluster.audit_events(user))

    with short_socket_dir() as socket_dir:
        args, env = container_command(daemonset, socket_dir, NODE)

        async def mount() -> bytes:
            async with in_cluster_provider(
                cluster,
                provider_token,
                PROVIDER_NAMESPACE,
                args=args,
                env=env,
                workdir=tmp_path,
                socket_dir=socket_dir,
            ) as provider:
                attributes = pod_attributes(
                    OBJECTS,
                    pod=APP_POD,
                    namespace=APP_NAMESPACE,
                    service_account=APP_ACCOUNT,
                    region=None,
                    sts_token=pod_token,
                )
                with GrpcioProviderClient(provider.socket_path) as client:
                    reply = await asyncio.to_thread(client.mount, attributes=attributes, timeout=60)
                leak_scan.add_text(f"{case} provider log", provider.log())
                return bytes(reply.files[0].contents)

        assert asyncio.run(mount()) == SECRET_VALUE.encode()

    _, _, expected = CASES[case]
    events = cluster.audit_events(user)[already:]
    made = {(event["verb"], event["objectRef"]["resource"]) for event in events}
    assert made == expected  # every request it needs, through in-cluster configuration
    assert all(event["responseStatus"]["code"] == 200 for event in events), events  # each allowed
    assert granted(cluster, provider_token) == expected  # and nothing beyond them
