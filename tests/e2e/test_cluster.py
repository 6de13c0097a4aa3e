"""The control plane itself: the pinned version, RBAC enforced, TokenRequest tokens, the audit log."""

from __future__ import annotations

import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from lightkube import Client
from lightkube.core.exceptions import ApiError
from lightkube.models.authentication_v1 import TokenReviewSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.authentication_v1 import TokenReview
from lightkube.resources.core_v1 import Namespace, Pod, ServiceAccount

from testkit.cluster import ISSUER, Cluster

GO_MOD = Path(__file__).resolve().parents[1] / "kubeapiserver" / "go.mod"
NAMESPACE = "e2e-cluster"


def pinned_version() -> str:
    for line in GO_MOD.read_text().splitlines():
        fields = line.split()
        if fields[:1] == ["k8s.io/kubernetes"] and fields[1].startswith("v"):
            return fields[1]
    raise AssertionError(f"{GO_MOD} pins no k8s.io/kubernetes")


@pytest.fixture(scope="module")
def account(cluster: Cluster) -> str:
    cluster.apply(
        [
            Namespace(metadata=ObjectMeta(name=NAMESPACE)),
            ServiceAccount(metadata=ObjectMeta(name="reader", namespace=NAMESPACE)),
        ]
    )
    return "reader"


def test_version_is_the_pinned_release(cluster: Cluster) -> None:
    # Helm's kubeVersion checks read this: the ldflags of `make cluster` must have set it.
    context = ssl.create_default_context(cafile=str(cluster.ca_file))
    with urllib.request.urlopen(f"{cluster.server}/version", context=context, timeout=10) as answer:
        version = json.load(answer)
    assert version["gitVersion"] == pinned_version()
    assert (version["major"], version["minor"]) == tuple(pinned_version()[1:].split(".")[:2])


def test_rbac_refuses_a_service_account_without_bindings(cluster: Cluster, account: str) -> None:
    token = cluster.token(NAMESPACE, account)
    with cluster.client_as(token) as client, pytest.raises(ApiError) as refused:
        list(client.list(Pod, namespace=NAMESPACE))
    assert refused.value.status.code == 403
    assert f"system:serviceaccount:{NAMESPACE}:{account}" in str(refused.value.status.message)


def test_token_request_mints_audience_bound_tokens(cluster: Cluster, account: str) -> None:
    token = cluster.token(NAMESPACE, account, audiences=["sts.amazonaws.com"], seconds=600)
    review = cluster.admin.create(
        TokenReview(spec=TokenReviewSpec(token=token, audiences=["sts.amazonaws.com"]))
    )
    assert review.status is not None and review.status.authenticated
    assert review.status.audiences == ["sts.amazonaws.com"]
    assert review.status.user is not None
    assert review.status.user.username == f"system:serviceaccount:{NAMESPACE}:{account}"
    other = cluster.admin.create(TokenReview(spec=TokenReviewSpec(token=token, audiences=[ISSUER])))
    assert other.status is not None and not other.status.authenticated


def test_admin_kubeconfig_and_audit_log(cluster: Cluster) -> None:
    with Client(config=cluster.config()) as client:
        names = {ns.metadata.name for ns in client.list(Namespace) if ns.metadata}
    assert {"default", "kube-system"} <= names
    listed = [
        event
        for event in cluster.audit_events("e2e-admin")
        if event["verb"] == "list" and event["objectRef"].get("resource") == "namespaces"
    ]
    assert listed and listed[-1]["responseStatus"]["code"] == 200
