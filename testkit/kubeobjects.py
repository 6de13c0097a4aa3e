"""The Kubernetes objects of the seed's flow, created in a real API server (testkit.cluster).

The driver's CRDs (from the driver module's deploy/), its CSIDriver with the token audiences the AWS
provider needs, Nodes with a region label, ServiceAccounts with the IRSA annotation, Pods bound to a node
with a Secrets Store inline volume, SecretProviderClasses; TokenRequest tokens minted for a pod as the
kubelet mints them; and what the driver writes back (SecretProviderClassPodStatus, Secrets).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from lightkube.core.exceptions import ApiError
from lightkube.generic_resource import create_namespaced_resource
from lightkube.models.core_v1 import Container, CSIVolumeSource, PodSpec, Volume, VolumeMount
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import Namespace, Node, Pod, Secret, ServiceAccount

from testkit.cluster import Cluster
from testkit.csidriver import DRIVER_NAME, VOLUME_NAME, PodVolume

__all__ = ["POD_IDENTITY_AUDIENCE", "STS_AUDIENCE", "FlowObjects"]

STS_AUDIENCE = "sts.amazonaws.com"
POD_IDENTITY_AUDIENCE = "pods.eks.amazonaws.com"
ROLE_ARN_ANNOTATION = "eks.amazonaws.com/role-arn"
REGION_LABEL = "topology.kubernetes.io/region"
TOKEN_SECONDS = 3600

SecretProviderClass = create_namespaced_resource(
    "secrets-store.csi.x-k8s.io", "v1", "SecretProviderClass", "secretproviderclasses"
)
SecretProviderClassPodStatus = create_namespaced_resource(
    "secrets-store.csi.x-k8s.io", "v1", "SecretProviderClassPodStatus", "secretproviderclasspodstatuses"
)


class FlowObjects:
    """Creates and reads the flow's objects in `cluster`, as its admin."""

    def __init__(self, cluster: Cluster) -> None:
        self.cluster = cluster
        self.client = cluster.admin

    def install_driver(
        self, deploy_dir: Path, audiences: Sequence[str] = (STS_AUDIENCE, POD_IDENTITY_AUDIENCE)
    ) -> None:
        """The driver's two CRDs (from its deploy/, established) and its CSIDriver, as the driver's chart
        installs it with `tokenRequests` for the AWS provider's audiences."""
        for name in ("secretproviderclasses", "secretproviderclasspodstatuses"):
            crd = deploy_dir / f"secrets-store.csi.x-k8s.io_{name}.yaml"
            self.cluster.apply(crd.read_text(), self.client)
        csidriver = yaml.safe_load((deploy_dir / "csidriver.yaml").read_text())
        csidriver["spec"]["tokenRequests"] = [{"audience": audience} for audience in audiences]
        self.cluster.apply(yaml.safe_dump(csidriver), self.client)

    def namespace(self, name: str) -> None:
        self.client.create(Namespace(metadata=ObjectMeta(name=name)))

    def node(self, name: str, region: str) -> None:
        self.client.create(Node(metadata=ObjectMeta(name=name, labels={REGION_LABEL: region})))

    def service_account(self, namespace: str, name: str, role_arn: str | None = None) -> None:
        annotations = {ROLE_ARN_ANNOTATION: role_arn} if role_arn else None
        meta = ObjectMeta(name=name, namespace=namespace, annotations=annotations)
        self.client.create(ServiceAccount(metadata=meta))

    def secret_provider_class(
        self, namespace: str, name: str, parameters: Mapping[str, str], secret_objects: Sequence[Any] = ()
    ) -> None:
        spec: dict[str, Any] = {"provider": "aws", "parameters": dict(parameters)}
        if secret_objects:
            spec["secretObjects"] = list(secret_objects)
        meta = ObjectMeta(name=name, namespace=namespace)
        self.client.create(SecretProviderClass(metadata=meta, spec=spec))

    def pod(self, namespace: str, name: str, service_account: str, spc: str, node: str) -> PodVolume:
        """A pod bound to `node` whose inline volume names `spc`; the kubelet's view of its volume."""
        volume = Volume(
            name=VOLUME_NAME,
            csi=CSIVolumeSource(
                driver=DRIVER_NAME, readOnly=True, volumeAttributes={"secretProviderClass": spc}
            ),
        )
        container = Container(
            name="app",
            image="registry.invalid/app:1",
            volumeMounts=[VolumeMount(name=VOLUME_NAME, mountPath="/mnt/secrets-store", readOnly=True)],
        )
        spec = PodSpec(
            nodeName=node,
            serviceAccountName=service_account,
            automountServiceAccountToken=False,
            containers=[container],
            volumes=[volume],
        )
        created = self.client.create(Pod(metadata=ObjectMeta(name=name, namespace=namespace), spec=spec))
        assert created.metadata is not None and created.metadata.uid is not None
        return PodVolume(namespace, name, created.metadata.uid, service_account, spc)

    def tokens(
        self, volume: PodVolume, audiences: Sequence[str] = (STS_AUDIENCE, POD_IDENTITY_AUDIENCE)
    ) -> dict[str, dict[str, str]]:
        """serviceAccount.tokens as the kubelet builds it: a TokenRequest per audience, bound to the pod."""
        minted: dict[str, dict[str, str]] = {}
        for audience in audiences:
            token = self.cluster.token(
                volume.namespace, volume.service_account, [audience], TOKEN_SECONDS, (volume.pod, volume.uid)
            )
            minted[audience] = {"token": token, "expirationTimestamp": _expiry(token)}
        return minted

    def pod_status(self, volume: PodVolume) -> dict[str, Any]:
        """The status of the SecretProviderClassPodStatus the driver recorded for the pod's volume."""
        status = self.pod_status_or_none(volume)
        assert status is not None, f"no SecretProviderClassPodStatus for {volume.namespace}/{volume.pod}"
        return status

    def pod_status_or_none(self, volume: PodVolume) -> dict[str, Any] | None:
        name = f"{volume.pod}-{volume.namespace}-{volume.secret_provider_class}"
        try:
            found = self.client.get(SecretProviderClassPodStatus, name, namespace=volume.namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise
        status: dict[str, Any] = found["status"]
        return status

    def secret_data(self, namespace: str, name: str) -> dict[str, str] | None:
        """A Secret's data (base64 values as stored), None while it does not exist."""
        try:
            secret = self.client.get(Secret, name, namespace=namespace)
        except ApiError as error:
            if error.status.code == 404:
                return None
            raise
        return dict(secret.data or {})


def _expiry(token: str) -> str:
    """The JWT's `exp` in the RFC 3339 form the kubelet writes beside each token."""
    payload = token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    return datetime.fromtimestamp(claims["exp"], UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
