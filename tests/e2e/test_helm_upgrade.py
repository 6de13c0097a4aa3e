"""Installing and moving from the Go provider's Helm release on a real API server.

A release of the Go provider's own chart (3.1.1, which also installs the driver) is upgraded to this
chart with its default values, with `--reuse-values` and with the Go values file that sets every
key; each ends with exactly one provider DaemonSet (the Go one, updated in place: same name and
selector), the Go release's RBAC objects updated in place (none left over), and the driver's objects
untouched. `helm rollback` returns to the Go revision. Hooks are skipped when the Go chart is
installed (`--no-hooks`): its driver's CRD-upgrade Jobs would wait for a kubelet that is not there.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import DaemonSet
from lightkube.resources.core_v1 import ServiceAccount
from lightkube.resources.rbac_authorization_v1 import ClusterRole, ClusterRoleBinding
from lightkube.resources.storage_v1 import CSIDriver

from testkit.cluster import Cluster
from testkit.helm import CHART, Helm

NAMESPACE = "kube-system"
DATA = Path(__file__).resolve().parents[1] / "data" / "helm"
GO_VALUES = DATA / "go-chart-values.yaml"
DRIVER_LABEL = "app.kubernetes.io/name=secrets-store-csi-driver"
KEEP = {"metadata": {"annotations": {"helm.sh/resource-policy": "keep"}}}
OUR_RULES = {("serviceaccounts", "get"), ("nodes", "get")}


CSIDRIVER = "secrets-store.csi.k8s.io"


@pytest.fixture(autouse=True)
def driver_slot(cluster: Cluster) -> Iterator[None]:
    """The Go chart installs the driver, CSIDriver included. One that another test created outside Helm
    (the driver-flow tests install the driver's CSIDriver themselves) is set aside for the test, since
    Helm refuses to take over an object it did not create, and put back after it."""
    try:
        existing = cluster.admin.get(CSIDriver, CSIDRIVER)
    except ApiError as error:
        if error.status.code != 404:
            raise
        existing = None
    if existing is not None:
        cluster.admin.delete(CSIDriver, CSIDRIVER)
    yield
    if existing is not None:
        assert existing.metadata is not None
        existing.metadata = ObjectMeta(
            name=CSIDRIVER, labels=existing.metadata.labels, annotations=existing.metadata.annotations
        )
        cluster.admin.create(existing)


def go_names(release: str, values: Path | None) -> tuple[str, str]:
    """(the Go chart's full name, its ServiceAccount's name) for `release`."""
    if values is not None:
        return "csi-secrets-store-provider-aws", "secrets-provider"  # go-chart-values.yaml's overrides
    name = f"{release}-secrets-store-csi-driver-provider-aws"[:63].rstrip("-")
    return name, name


def keep_driver(admin: Client, release: str) -> None:
    """The README's step before upgrading a Go release that holds the driver: mark the driver's
    objects `helm.sh/resource-policy: keep` (what its two `kubectl annotate` commands do)."""
    selector = f"{DRIVER_LABEL},app.kubernetes.io/instance={release}"
    for kind in (DaemonSet, ServiceAccount):
        for obj in admin.list(kind, namespace=NAMESPACE, labels=_labels(selector)):
            admin.patch(kind, obj.metadata.name, KEEP, namespace=NAMESPACE)
    for cluster_kind in (CSIDriver, ClusterRole, ClusterRoleBinding):
        for obj in admin.list(cluster_kind, labels=_labels(selector)):
            admin.patch(cluster_kind, obj.metadata.name, KEEP)


def _labels(selector: str) -> dict[str, str]:
    return dict(pair.split("=", 1) for pair in selector.split(","))


def of_release(admin: Client, kind: Any, release: str, namespaced: bool = True) -> dict[str, Any]:
    """Objects of `kind` that Helm recorded as belonging to `release`, by name."""
    found = admin.list(kind, namespace=NAMESPACE) if namespaced else admin.list(kind)
    return {
        obj.metadata.name: obj
        for obj in found
        if (obj.metadata.annotations or {}).get("meta.helm.sh/release-name") == release
    }


def driver_objects(admin: Client, release: str) -> dict[str, str]:
    """kind/name -> uid of the driver's objects (unchanged uid: never deleted and recreated)."""
    selector = _labels(f"{DRIVER_LABEL},app.kubernetes.io/instance={release}")
    found: dict[str, str] = {}
    for kind in (DaemonSet, ServiceAccount):
        for obj in admin.list(kind, namespace=NAMESPACE, labels=selector):
            found[f"{kind.__name__}/{obj.metadata.name}"] = str(obj.metadata.uid)
    for cluster_kind in (CSIDriver, ClusterRole, ClusterRoleBinding):
        for obj in admin.list(cluster_kind, labels=selector):
            found[f"{cluster_kind.__name__}/{obj.metadata.name}"] = str(obj.metadata.uid)
    return found


def rules(role: ClusterRole) -> set[tuple[str, str]]:
    return {
        (resource, verb)
        for rule in role.rules or []
        for resource in rule.resources or []
        for verb in rule.verbs
    }


def provider_daemonsets(admin: Client) -> dict[str, DaemonSet]:
    """Every DaemonSet running a provider (Go's container or ours), by name."""
    names = {"provider-aws-installer", "provider-aws"}
    return {
        ds.metadata.name: ds
        for ds in admin.list(DaemonSet, namespace=NAMESPACE)
        if {c.name for c in ds.spec.template.spec.containers} & names
    }


@pytest.fixture
def release(helm: Helm, cluster: Cluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """A release name for one test; uninstalled after it, and the driver's kept objects removed."""
    name = f"go-{zlib.crc32(request.node.nodeid.encode()):08x}"
    yield name
    helm.run("uninstall", name, "-n", NAMESPACE, "--no-hooks", "--wait=false", check=False)
    selector = _labels(f"{DRIVER_LABEL},app.kubernetes.io/instance={name}")
    admin = cluster.admin
    for kind in (DaemonSet, ServiceAccount):
        for obj in admin.list(kind, namespace=NAMESPACE, labels=selector):
            admin.delete(kind, obj.metadata.name, namespace=NAMESPACE)
    for cluster_kind in (CSIDriver, ClusterRole, ClusterRoleBinding):
        for obj in admin.list(cluster_kind, labels=selector):
            admin.delete(cluster_kind, obj.metadata.name)


UPGRADES = {
    "defaults": (None, ()),
    "reuse-values": (None, ("--reuse-values",)),
    "go-values": (GO_VALUES, ("-f", str(GO_VALUES))),
}


@pytest.mark.parametrize("case", UPGRADES)
def test_a_go_release_upgrades_in_place_and_keeps_the_driver(
    helm: Helm, go_chart: Path, cluster: Cluster, release: str, case: str
) -> None:
    values, upgrade_args = UPGRADES[case]
    admin = cluster.admin
    install_values = ("-f", str(values)) if values else ()
    helm.run("install", release, str(go_chart), "-n", NAMESPACE, "--no-hooks", *install_values)
    full_name, account = go_names(release, values)
    before = provider_daemonsets(admin)
    assert set(before) == {full_name}
    go_selector = before[full_name].spec.selector.matchLabels
    driver = driver_objects(admin, release)
    assert "DaemonSet/secrets-store-csi-driver" in driver and "CSIDriver/secrets-store.csi.k8s.io" in driver

    # Without the driver marked to be kept, the upgrade refuses (Helm would delete the driver).
    refused = helm.run("upgrade", release, str(CHART), "-n", NAMESPACE, *upgrade_args, check=False)
    assert refused.returncode != 0
    assert "secrets-store-csi-driver" in refused.stderr and "helm.sh/resource-policy=keep" in refused.stderr
    assert [entry["status"] for entry in helm.history(release, NAMESPACE)] == ["deployed"]
    assert driver_objects(admin, release) == driver

    keep_driver(admin, release)
    helm.run("upgrade", release, str(CHART), "-n", NAMESPACE, *upgrade_args)

    after = provider_daemonsets(admin)
    assert set(after) == {full_name}  # one provider DaemonSet: the Go one, updated in place
    daemonset = after[full_name]
    assert daemonset.metadata.uid == before[full_name].metadata.uid
    assert daemonset.spec.selector.matchLabels == go_selector
    assert [c.name for c in daemonset.spec.template.spec.containers] == ["provider-aws"]
    assert daemonset.spec.template.spec.serviceAccountName == account
    assert driver_objects(admin, release) == driver  # the driver untouched: same objects, same uids

    # RBAC: the Go release's objects, updated in place; nothing of the provider's left over.
    roles = {
        n: r
        for n, r in of_release(admin, ClusterRole, release, namespaced=False).items()
        if n.startswith(full_name)
    }
    assert set(roles) == {f"{full_name}-cluster-role"}
    granted = rules(roles[f"{full_name}-cluster-role"])
    if values is None:  # no awsRegion: while Go pods still run, they keep `get pods` (documented)
        assert granted == OUR_RULES | {("pods", "get")}
    else:
        assert granted == {("serviceaccounts", "get")}
    bindings = of_release(admin, ClusterRoleBinding, release, namespaced=False)
    assert {n for n in bindings if n.startswith(full_name)} == {f"{full_name}-cluster-role-binding"}
    accounts = of_release(admin, ServiceAccount, release)
    assert account in accounts

    # The next upgrade (this chart to this chart) drops the Go pods' rule.
    helm.run("upgrade", release, str(CHART), "-n", NAMESPACE, *upgrade_args)
    granted = rules(admin.get(ClusterRole, f"{full_name}-cluster-role"))
    assert granted == (OUR_RULES if values is None else {("serviceaccounts", "get")})
    assert set(provider_daemonsets(admin)) == {full_name}


def test_rollback_returns_to_the_go_chart(helm: Helm, go_chart: Path, cluster: Cluster, release: str) -> None:
    """The README's path with a way back: keep the driver, take it out of the release with the Go chart
    itself (revision 2), upgrade to this chart (3), roll back to 2. Rolling back to revision 1 instead
    fails on the driver's CSIDriver: Helm patches an object that exists but is not in the current
    revision from its live state, and the API server refuses a CSIDriver update without a
    resourceVersion (helm v3.22)."""
    admin = cluster.admin
    helm.run("install", release, str(go_chart), "-n", NAMESPACE, "--no-hooks")
    full_name, _ = go_names(release, None)
    driver = driver_objects(admin, release)
    keep_driver(admin, release)
    without_driver = ("--reuse-values", "--set", "secrets-store-csi-driver.install=false", "--no-hooks")
    helm.run("upgrade", release, str(go_chart), "-n", NAMESPACE, *without_driver)
    assert driver_objects(admin, release) == driver
    helm.run("upgrade", release, str(CHART), "-n", NAMESPACE)
    assert [c.name for c in provider_daemonsets(admin)[full_name].spec.template.spec.containers] == [
        "provider-aws"
    ]
    helm.run("rollback", release, "2", "-n", NAMESPACE, "--no-hooks")

    after = provider_daemonsets(admin)
    assert set(after) == {full_name}
    assert [c.name for c in after[full_name].spec.template.spec.containers] == ["provider-aws-installer"]
    granted = rules(admin.get(ClusterRole, f"{full_name}-cluster-role"))
    assert granted == {("serviceaccounts", "get"), ("pods", "get"), ("nodes", "get")}
    assert driver_objects(admin, release) == driver
    assert [entry["status"] for entry in helm.history(release, NAMESPACE)][-1] == "deployed"


def test_a_fresh_install_of_this_chart(helm: Helm, cluster: Cluster, release: str) -> None:
    helm.run("install", release, str(CHART), "-n", NAMESPACE, "--set", "awsRegion=eu-west-1")
    name = f"{release}-secrets-store-csi-provider-aws"
    daemonset = cluster.admin.get(DaemonSet, name, namespace=NAMESPACE)
    assert daemonset.spec.selector.matchLabels == {
        "app.kubernetes.io/name": "secrets-store-csi-provider-aws",
        "app.kubernetes.io/instance": release,
    }
    assert rules(cluster.admin.get(ClusterRole, f"{name}-cluster-role")) == {("serviceaccounts", "get")}
    with pytest.raises(ApiError):
        cluster.admin.get(DaemonSet, "secrets-store-csi-driver", namespace=NAMESPACE)
