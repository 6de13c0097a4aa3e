"""Shared helpers of the identity and region tests: plans, tokens, a served fake cluster."""

from __future__ import annotations

import base64
import json
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import pytest
from aiobotocore.session import get_session

from provider_aws.attributes import IRSA_AUDIENCE, POD_IDENTITY_AUDIENCE
from provider_aws.aws.clients import AwsClients
from provider_aws.identity.credentials import IdentityProvider
from provider_aws.identity.kube import KubeApi
from provider_aws.model import (
    AddressPreference,
    MountPlan,
    ObjectRef,
    ObjectSpec,
    ObjectType,
    PodInfo,
    SecretText,
    StaticCredentials,
)
from provider_aws.settings import Settings
from testkit.kubeapi import FakeKubeApi

# The audiences under the names the tests use.
IRSA = IRSA_AUDIENCE
POD_IDENTITY = POD_IDENTITY_AUDIENCE
ROLE = "arn:aws:iam::123456789012:role/app-reader"


def _b64(data: Mapping[str, object]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


def jwt(namespace: str, service_account: str, pod: str, audience: str = IRSA) -> str:
    """A JWT-shaped token naming the pod (unsigned: moto and the fake agent do not verify)."""
    claims = {
        "aud": [audience],
        "sub": f"system:serviceaccount:{namespace}:{service_account}",
        "kubernetes.io": {"namespace": namespace, "pod": {"name": pod}},
    }
    return f"{_b64({'alg': 'RS256', 'kid': 'test'})}.{_b64(claims)}.c2lnbmF0dXJl"


def make_plan(
    namespace: str = "team-a",
    pod: str = "app-0",
    service_account: str = "app",
    *,
    audiences: tuple[str, ...] | None = (IRSA, POD_IDENTITY),
    region: str | None = None,
    use_pod_identity: bool = False,
    preferred_address: AddressPreference = AddressPreference.AUTO,
    static: StaticCredentials | None = None,
) -> MountPlan:
    tokens = (
        None
        if audiences is None
        else tuple((aud, SecretText(jwt(namespace, service_account, pod, aud))) for aud in audiences)
    )
    spec = ObjectSpec(ObjectType.SECRETS_MANAGER, ObjectRef("app/secret"), "app_secret", 0o644)
    return MountPlan(
        objects=(spec,),
        pod=PodInfo(namespace, pod, f"uid-{namespace}-{pod}", service_account),
        default_mode=0o644,
        target_path="/var/lib/kubelet/pods/x/volumes/kubernetes.io~csi/secrets/mount",
        region=region,
        use_pod_identity=use_pod_identity,
        preferred_address=preferred_address,
        tokens=tokens,
        static_credentials=static,
    )


@contextmanager
def served_cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    """A fake kube-apiserver, reachable through KUBECONFIG for as long as the block runs."""
    server = FakeKubeApi().start()
    monkeypatch.setenv("KUBECONFIG", str(server.write_kubeconfig(tmp_path / "kubeconfig")))
    try:
        yield server
    finally:
        server.stop()


@asynccontextmanager
async def identity_provider(
    settings: Settings, kube: KubeApi, **options: Any
) -> AsyncIterator[IdentityProvider]:
    """An IdentityProvider with AWS clients of its own (STS), both closed on leaving."""
    clients = AwsClients(settings, get_session())
    identities = IdentityProvider(settings, clients, kube, **options)
    try:
        yield identities
    finally:
        await identities.close()
        await clients.close()
