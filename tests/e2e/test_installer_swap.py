"""`kubectl apply -k manifests/base` over the Go provider's installer manifest
(deployment/aws-provider-installer.yaml), on a real API server, applied server-side under one field
manager as `kubectl apply --server-side` does: the Go DaemonSet is updated in place (same name, same
selector), its container replaced by ours, and the Go installer's ClusterRole and binding (same names)
narrowed to this provider's rules; nothing of the Go installer is left beside it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding

from testkit.cluster import Cluster
from testkit.helm import go_provider_file

MANIFESTS = Path(__file__).resolve().parents[2] / "manifests" / "base"
NAMESPACE = "kube-system"
NAME = "csi-secrets-store-provider-aws"


def ours() -> str:
    listed = yaml.safe_load((MANIFESTS / "kustomization.yaml").read_text())["resources"]
    return "---\n".join((MANIFESTS / name).read_text() for name in listed)


@pytest.fixture
def kubectl(cluster: Cluster) -> Iterator[Client]:
    """The admin, applying as `kubectl` does; the installer's objects deleted afterwards."""
    with Client(config=cluster.config(), field_manager="kubectl") as client:
        yield client
    for obj in cluster.apply(go_provider_file("deployment/aws-provider-installer.yaml")):
        assert obj.metadata is not None and obj.metadata.name
        cluster.admin.delete(type(obj), obj.metadata.name, namespace=obj.metadata.namespace)


def test_our_installer_applied_over_the_go_installer(cluster: Cluster, kubectl: Client) -> None:
    go = go_provider_file("deployment/aws-provider-installer.yaml")
    cluster.apply(go, client=kubectl)
    before = cluster.admin.get(DaemonSet, NAME, namespace=NAMESPACE)
    assert before.spec is not None and before.metadata is not None

    cluster.apply(ours(), client=kubectl)

    after = cluster.admin.get(DaemonSet, NAME, namespace=NAMESPACE)
    assert after.metadata is not None and after.spec is not None and after.spec.template.spec is not None
    assert after.metadata.uid == before.metadata.uid  # updated in place
    assert after.spec.selector.matchLabels == before.spec.selector.matchLabels
    containers = after.spec.template.spec.containers
    assert [c.name for c in containers] == ["provider-aws"]  # the Go container is gone
    volumes = {v.name for v in after.spec.template.spec.volumes or []}
    assert "mountpoint-dir" not in volumes  # so is its host mount of pod volumes
    role = cluster.admin.get(ClusterRole, f"{NAME}-cluster-role")
    granted = {
        (verb, resource)
        for rule in role.rules or []
        for resource in rule.resources or []
        for verb in rule.verbs
    }
    assert granted == {("get", "serviceaccounts"), ("get", "nodes")}  # no more `get pods`
    binding = cluster.admin.get(ClusterRoleBinding, f"{NAME}-cluster-rolebinding")
    assert binding.roleRef.name == f"{NAME}-cluster-role"
    providers = [
        ds
        for ds in cluster.admin.list(DaemonSet, namespace=NAMESPACE)
        if ds.metadata and ds.metadata.name and ds.metadata.name.startswith(NAME)
    ]
    assert len(providers) == 1
    with pytest.raises(ApiError):
        cluster.admin.get(ClusterRole, NAME)  # no second, differently named role of ours
