from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from provider_aws.errors import (
    AccessDeniedError,
    NotFoundError,
    PreconditionError,
    ProviderError,
    UnavailableError,
)
from provider_aws.identity.kube import LightkubeApi
from provider_aws.identity.regions import REGION_LABEL, RegionResolver
from provider_aws.settings import Settings
from testkit.identity import make_plan, served_cluster
from testkit.kubeapi import FakeKubeApi


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with served_cluster(tmp_path, monkeypatch) as server:
        server.state.nodes["node-a"] = {REGION_LABEL: "eu-west-1", "kubernetes.io/os": "linux"}
        server.state.nodes["node-b"] = {REGION_LABEL: "ap-south-1"}
        server.state.nodes["unlabelled"] = {}
        yield server


def resolver(kube: LightkubeApi, **changes: object) -> RegionResolver:
    return RegionResolver(replace(Settings(), **changes), kube)  # type: ignore[arg-type]


@pytest.mark.asyncio
async def test_region_parameter_wins(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    regions = resolver(kube, aws_region="us-east-1", node_name="node-a")
    assert await regions.region_for(make_plan(region="eu-central-1")) == "eu-central-1"
    assert cluster.state.count() == 0


@pytest.mark.asyncio
async def test_aws_region_comes_before_the_node(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    regions = resolver(kube, aws_region="us-east-1", node_name="node-a")
    assert await regions.region_for(make_plan()) == "us-east-1"
    assert cluster.state.count() == 0


@pytest.mark.asyncio
async def test_own_node_label_is_read_once_for_all_mounts(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    regions = resolver(kube, node_name="node-a")
    plans = [make_plan(pod=f"app-{i}", service_account=f"sa-{i % 10}") for i in range(100)]
    answers = await asyncio.wait_for(asyncio.gather(*(regions.region_for(p) for p in plans)), timeout=30)
    assert set(answers) == {"eu-west-1"}
    assert await regions.region_for(make_plan(pod="later")) == "eu-west-1"
    assert dict(cluster.state.gets) == {"nodes": 1}
    assert regions.kube_gets == {("nodes", "ok"): 1}


@pytest.mark.asyncio
async def test_without_node_name_the_pods_node_is_used_and_kept(
    cluster: FakeKubeApi, kube: LightkubeApi
) -> None:
    cluster.state.pods[("team-a", "app-0")] = "node-a"
    cluster.state.pods[("team-a", "app-1")] = "node-a"
    cluster.state.pods[("team-b", "db-0")] = "node-b"
    regions = resolver(kube)
    for _ in range(3):
        assert await regions.region_for(make_plan("team-a", "app-0")) == "eu-west-1"
    assert await regions.region_for(make_plan("team-a", "app-1")) == "eu-west-1"
    assert await regions.region_for(make_plan("team-b", "db-0")) == "ap-south-1"
    # one GET per pod, one per node: nothing is asked twice
    assert dict(cluster.state.gets) == {"pods": 3, "nodes": 2}


@pytest.mark.asyncio
async def test_node_without_label_says_to_set_the_region(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    regions = resolver(kube, node_name="unlabelled")
    with pytest.raises(PreconditionError, match=r"failed to retrieve region .*set the region parameter"):
        await regions.region_for(make_plan())
    # an absent label is not remembered: adding it takes effect at once
    cluster.state.nodes["unlabelled"] = {REGION_LABEL: "sa-east-1"}
    assert await regions.region_for(make_plan()) == "sa-east-1"


@pytest.mark.asyncio
async def test_unscheduled_pod_says_to_set_the_region(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    cluster.state.pods[("team-a", "app-0")] = ""
    with pytest.raises(PreconditionError, match=r"not bound to a node.*set the region parameter"):
        await resolver(kube).region_for(make_plan())


@pytest.mark.asyncio
async def test_missing_pod_or_node_is_not_found(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    with pytest.raises(NotFoundError, match="pod app-0"):
        await resolver(kube).region_for(make_plan())
    with pytest.raises(NotFoundError, match="node gone"):
        await resolver(kube, node_name="gone").region_for(make_plan())


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "case",
    [
        ("unlabelled", None, PreconditionError, f"it has no {REGION_LABEL} label"),
        ("gone", None, NotFoundError, "node gone not found"),
        ("node-a", 403, AccessDeniedError, "grant its ServiceAccount `get` on nodes"),
        ("node-a", 503, UnavailableError, "the Kubernetes API failed to return node node-a"),
    ],
    ids=["label missing", "node missing", "forbidden", "API down"],
)
async def test_a_failed_node_lookup_says_what_it_was_for_and_both_fixes(
    cluster: FakeKubeApi, kube: LightkubeApi, case: tuple[str, int | None, type[ProviderError], str]
) -> None:
    """Like the Go provider's "failed to retrieve region from node", plus why and the two ways out."""
    node, fault, error, cause = case
    if fault is not None:
        cluster.state.faults["nodes"] = fault
    with pytest.raises(error) as raised:
        await resolver(kube, node_name=node).region_for(make_plan())
    message = raised.value.message
    assert message.startswith(f"failed to retrieve region from node {node}: ")
    assert cause in message
    assert message.endswith(
        "set the region parameter in the SecretProviderClass (or AWS_REGION on the provider), "
        f"or the {REGION_LABEL} label on node {node}"
    )


@pytest.mark.asyncio
async def test_without_node_name_the_pods_node_is_named_too(cluster: FakeKubeApi, kube: LightkubeApi) -> None:
    """The Go chart sets no NODE_NAME: the node comes from the pod, and the message names both."""
    cluster.state.pods[("team-a", "app-0")] = "unlabelled"
    with pytest.raises(PreconditionError, match="from node unlabelled: it has no"):
        await resolver(kube).region_for(make_plan())
    cluster.state.faults["pods"] = 500
    with pytest.raises(UnavailableError) as raised:
        await resolver(kube).region_for(make_plan(pod="app-1"))
    assert raised.value.message.startswith(
        "failed to retrieve region: looking up the node of pod app-1 (team-a): the Kubernetes API failed"
    )
    assert "set the region parameter in the SecretProviderClass" in raised.value.message


@pytest.mark.asyncio
async def test_no_cluster_needed_when_the_region_is_known(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    api = LightkubeApi()
    try:
        assert await resolver(api).region_for(make_plan(region="us-west-2")) == "us-west-2"
        assert await resolver(api, aws_region="eu-north-1").region_for(make_plan()) == "eu-north-1"
    finally:
        await api.close()
