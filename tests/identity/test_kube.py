from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from provider_aws.errors import AccessDeniedError, NotFoundError, PreconditionError, UnavailableError
from provider_aws.identity.kube import LightkubeApi
from testkit.identity import served_cluster
from testkit.kubeapi import FakeKubeApi, write_kubeconfig
from testkit.podagent import closed_port_url


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with served_cluster(tmp_path, monkeypatch) as server:
        yield server


@pytest.mark.asyncio
async def test_reads_annotations_pod_node_and_labels(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    cluster.state.service_accounts[("ns", "sa")] = {"eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"}
    cluster.state.pods[("ns", "pod-1")] = "node-a"
    cluster.state.nodes["node-a"] = {"topology.kubernetes.io/region": "eu-west-1"}

    assert await kube.service_account_annotations("ns", "sa") == {
        "eks.amazonaws.com/role-arn": "arn:aws:iam::1:role/r"
    }
    assert await kube.pod_node_name("ns", "pod-1") == "node-a"
    assert await kube.node_labels("node-a") == {"topology.kubernetes.io/region": "eu-west-1"}
    assert dict(cluster.state.gets) == {"serviceaccounts": 1, "pods": 1, "nodes": 1}


@pytest.mark.asyncio
async def test_absent_annotations_labels_and_node_are_empty(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    cluster.state.service_accounts[("ns", "plain")] = {}
    cluster.state.pods[("ns", "pending")] = ""
    cluster.state.nodes["bare"] = {}
    assert await kube.service_account_annotations("ns", "plain") == {}
    assert await kube.pod_node_name("ns", "pending") is None
    assert await kube.node_labels("bare") == {}


@pytest.mark.asyncio
async def test_missing_objects_are_not_found(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    with pytest.raises(NotFoundError, match=r"ServiceAccount ghost \(namespace: ns\) not found"):
        await kube.service_account_annotations("ns", "ghost")
    with pytest.raises(NotFoundError, match="pod ghost"):
        await kube.pod_node_name("ns", "ghost")
    with pytest.raises(NotFoundError, match="node ghost"):
        await kube.node_labels("ghost")


@pytest.mark.asyncio
async def test_forbidden_says_which_permission_to_grant(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    cluster.state.faults["serviceaccounts"] = 403
    with pytest.raises(AccessDeniedError, match="grant its ServiceAccount `get` on serviceaccounts"):
        await kube.service_account_annotations("ns", "sa")


@pytest.mark.asyncio
async def test_server_errors_are_unavailable(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    cluster.state.faults["nodes"] = 503
    with pytest.raises(UnavailableError, match="HTTP 503"):
        await kube.node_labels("node-a")


@pytest.mark.asyncio
async def test_unreachable_api_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kube: LightkubeApi
) -> None:
    dead = closed_port_url().removesuffix("/v1/credentials")
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", dead)))
    with pytest.raises(UnavailableError, match="Kubernetes API is unreachable"):
        await kube.service_account_annotations("ns", "sa")


@pytest.mark.asyncio
async def test_no_configuration_is_a_precondition(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kube: LightkubeApi
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    with pytest.raises(PreconditionError, match="set KUBECONFIG"):
        await kube.node_labels("node-a")


@pytest.mark.asyncio
async def test_client_is_created_only_when_needed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    api = LightkubeApi()
    await api.close()  # nothing was read, nothing to close, no error
