"""Every identity error, its status class and its advice; the order of credential sources."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path

import pytest
import pytest_asyncio
from structlog.testing import capture_logs

from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.errors import (
    AccessDeniedError,
    NotFoundError,
    PreconditionError,
    ThrottledError,
    UnavailableError,
)
from provider_aws.identity.credentials import IdentityProvider, role_session_name
from provider_aws.identity.kube import LightkubeApi
from provider_aws.model import PodInfo, SecretText, StaticCredentials
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.identity import IRSA, POD_IDENTITY, ROLE, identity_provider, make_plan, served_cluster
from testkit.kubeapi import FakeKubeApi, write_kubeconfig
from testkit.podagent import FakePodIdentityAgent, closed_port_url
from testkit.stsrelay import StsRelay

ASSUME = "AssumeRoleWithWebIdentity"
STATIC = StaticCredentials("AKIASTATICEXAMPLE", SecretText("static-secret"), SecretText("static-session"))


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with served_cluster(tmp_path, monkeypatch) as server:
        server.state.service_accounts[("team-a", "app")] = {ROLE_ARN_ANNOTATION: ROLE}
        server.state.service_accounts[("team-a", "bare")] = {"team": "a"}
        yield server


@pytest_asyncio.fixture
async def identities(cluster: FakeKubeApi) -> AsyncIterator[IdentityProvider]:
    kube = LightkubeApi(timeout=5)
    try:
        async with identity_provider(Settings(aws_max_attempts=2), kube) as provider:
            yield provider
    finally:
        await kube.close()


def irsa_token(plan_token: SecretText | None) -> str:
    assert plan_token is not None
    return plan_token.reveal()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("audiences", "expected"),
    [
        (None, r"no csi\.storage\.k8s\.io/serviceAccount\.tokens attribute"),
        ((POD_IDENTITY,), r"no token for audience sts\.amazonaws\.com"),
        ((), r"no token for audience sts\.amazonaws\.com"),
    ],
)
async def test_missing_token_says_to_configure_token_requests(
    identities: IdentityProvider, cluster: FakeKubeApi, audiences: tuple[str, ...] | None, expected: str
) -> None:
    with pytest.raises(PreconditionError, match=expected) as caught:
        await identities.credentials_for(make_plan(audiences=audiences), "us-east-1")
    assert '{"audience": "sts.amazonaws.com"}' in str(caught.value)
    assert "tokenRequests of the CSIDriver" in str(caught.value)
    assert cluster.state.count() == 0  # checked before any look-up


@pytest.mark.asyncio
async def test_empty_token_counts_as_missing(identities: IdentityProvider) -> None:
    emptied = replace(make_plan(), tokens=((IRSA, SecretText("")),))
    with pytest.raises(PreconditionError, match="no token for audience"):
        await identities.credentials_for(emptied, "us-east-1")


@pytest.mark.asyncio
async def test_unknown_service_account_is_not_found(identities: IdentityProvider) -> None:
    with pytest.raises(NotFoundError, match=r"ServiceAccount ghost \(namespace: team-a\) not found"):
        await identities.credentials_for(make_plan(service_account="ghost"), "us-east-1")


@pytest.mark.asyncio
async def test_missing_annotation_names_service_account_and_namespace(identities: IdentityProvider) -> None:
    with pytest.raises(PreconditionError) as caught:
        await identities.credentials_for(make_plan(service_account="bare"), "us-east-1")
    assert str(caught.value).startswith(
        "An IAM role must be associated with service account bare (namespace: team-a)"
    )
    assert ROLE_ARN_ANNOTATION in str(caught.value)


@pytest.mark.asyncio
async def test_forbidden_service_account_read_is_permission_denied(
    identities: IdentityProvider, cluster: FakeKubeApi
) -> None:
    cluster.state.faults["serviceaccounts"] = 403
    with pytest.raises(AccessDeniedError, match="get` on serviceaccounts"):
        await identities.credentials_for(make_plan(), "us-east-1")
    assert identities.stats.kube_gets == {("serviceaccounts", "denied"): 1}


@pytest.mark.asyncio
async def test_throttled_kubernetes_api_is_counted_and_said(
    identities: IdentityProvider, cluster: FakeKubeApi
) -> None:
    cluster.state.faults["serviceaccounts"] = 429
    with pytest.raises(ThrottledError, match="throttled the provider getting ServiceAccount"):
        await identities.credentials_for(make_plan(), "us-east-1")
    assert identities.stats.kube_gets == {("serviceaccounts", "throttled"): 1}


@pytest.mark.asyncio
async def test_failing_kubernetes_api_is_unavailable(
    identities: IdentityProvider, cluster: FakeKubeApi, relay: StsRelay
) -> None:
    cluster.state.faults["serviceaccounts"] = 500
    with pytest.raises(UnavailableError, match="Kubernetes API failed"):
        await identities.credentials_for(make_plan(), "us-east-1")
    # failures are not remembered: the next Mount asks again and succeeds
    del cluster.state.faults["serviceaccounts"]
    assert (await identities.credentials_for(make_plan(), "us-east-1")).identity.startswith("irsa:")
    assert cluster.state.gets == {"serviceaccounts": 2}
    assert identities.stats.kube_gets == {("serviceaccounts", "error"): 1, ("serviceaccounts", "ok"): 1}
    assert identities.stats.sts_calls == {("us-east-1", "ok"): 1}


@pytest.mark.asyncio
async def test_unreachable_kubernetes_api_is_unavailable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dead = closed_port_url().removesuffix("/v1/credentials")
    monkeypatch.setenv("KUBECONFIG", str(write_kubeconfig(tmp_path / "kubeconfig", dead)))
    kube = LightkubeApi(timeout=5)
    try:
        async with identity_provider(Settings(), kube) as provider:
            with pytest.raises(UnavailableError, match="Kubernetes API is unreachable"):
                await provider.credentials_for(make_plan(), "us-east-1")
    finally:
        await kube.close()


@pytest.mark.asyncio
@pytest.mark.parametrize("code", ["AccessDenied", "InvalidIdentityToken", "ExpiredTokenException"])
async def test_sts_refusal_names_role_and_service_account(
    identities: IdentityProvider, relay: StsRelay, code: str
) -> None:
    relay.state.error = (403 if code == "AccessDenied" else 400, code)
    plan = make_plan()
    with capture_logs() as logs, pytest.raises(AccessDeniedError) as caught:
        await identities.credentials_for(plan, "us-east-1")
    message = str(caught.value)
    assert f"role {ROLE} for service account app (namespace: team-a)" in message
    assert code in message and "us-east-1" in message
    token = irsa_token(plan.token_for(IRSA))
    assert token not in message  # the relay echoes the token in its error message
    assert all(token not in repr(entry) for entry in logs)
    assert len(relay.state.exchanges) == 1  # a refusal is not retried
    assert identities.stats.sts_calls == {("us-east-1", "denied"): 1}


@pytest.mark.asyncio
async def test_sts_server_error_is_unavailable_after_bounded_retries(
    identities: IdentityProvider, relay: StsRelay
) -> None:
    relay.state.error = (503, "ServiceUnavailable")
    with pytest.raises(UnavailableError, match="ServiceUnavailable"):
        await identities.credentials_for(make_plan(), "us-east-1")
    assert len(relay.state.exchanges) == 2  # aws_max_attempts
    assert identities.stats.sts_calls == {("us-east-1", "error"): 1}  # one call, botocore's retries inside


@pytest.mark.asyncio
async def test_unreachable_sts_is_unavailable(
    identities: IdentityProvider, aws: ProxyState, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", closed_port_url().removesuffix("/v1/credentials"))
    with pytest.raises(UnavailableError, match="STS in us-east-1 is unreachable"):
        await identities.credentials_for(make_plan(), "us-east-1")


@pytest.mark.asyncio
async def test_static_credentials_need_no_token_cluster_or_sts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, aws: ProxyState
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "missing"))
    kube = LightkubeApi()
    try:
        async with identity_provider(Settings(), kube) as provider:
            got = await provider.credentials_for(make_plan(audiences=None, static=STATIC), "us-east-1")
    finally:
        await kube.close()
    assert (got.access_key_id, got.secret_access_key, got.session_token) == (
        STATIC.access_key_id,
        STATIC.secret_access_key,
        STATIC.session_token,
    )
    assert got.identity.startswith("static:AKIASTATICEXAMPLE:") and got.expiration is None
    assert STATIC.secret_access_key.reveal() not in got.identity
    assert aws.count() == 0


@pytest.mark.asyncio
async def test_static_credentials_come_before_irsa(
    identities: IdentityProvider, cluster: FakeKubeApi, aws: ProxyState
) -> None:
    got = await identities.credentials_for(make_plan(static=STATIC), "us-east-1")
    assert got.identity.startswith("static:AKIASTATICEXAMPLE:")
    assert cluster.state.count() == 0 and aws.count() == 0


@pytest.mark.asyncio
async def test_static_credentials_can_be_refused(cluster: FakeKubeApi, aws: ProxyState) -> None:
    kube = LightkubeApi()
    try:
        async with identity_provider(Settings(refuse_static_credentials=True), kube) as provider:
            with pytest.raises(AccessDeniedError) as refused:
                await provider.credentials_for(make_plan(static=STATIC), "us-east-1")
    finally:
        await kube.close()
    assert refused.value.status.name == "PERMISSION_DENIED"
    message = refused.value.message
    assert "nodePublishSecretRef" in message and "--refuse-static-credentials" in message
    assert "IRSA or EKS Pod Identity" in message
    assert STATIC.access_key_id not in message and STATIC.secret_access_key.reveal() not in message
    assert cluster.state.count() == 0 and aws.count() == 0


@pytest.mark.asyncio
async def test_same_access_key_id_with_another_secret_key_is_another_identity(
    identities: IdentityProvider,
) -> None:
    # Knowing someone's access key id must not be enough to share their cached values or clients.
    forged = StaticCredentials(STATIC.access_key_id, SecretText("made-up-secret-key"))
    real = await identities.credentials_for(make_plan(static=STATIC), "us-east-1")
    again = await identities.credentials_for(make_plan(static=STATIC), "us-east-1")
    other = await identities.credentials_for(make_plan(static=forged), "us-east-1")
    assert real.identity == again.identity
    assert other.identity != real.identity


@pytest.mark.asyncio
async def test_pod_identity_comes_before_static_credentials(cluster: FakeKubeApi, aws: ProxyState) -> None:
    agent = FakePodIdentityAgent().start()
    kube = LightkubeApi()
    plan = make_plan(use_pod_identity=True, static=STATIC)
    token = plan.token_for(POD_IDENTITY)
    assert token is not None
    agent.state.accept(token.reveal(), "ASIAAGENT")
    settings = Settings(
        pod_identity_endpoint_ipv4=agent.url, pod_identity_endpoint_ipv6=closed_port_url("::1")
    )
    try:
        async with identity_provider(settings, kube) as provider:
            got = await provider.credentials_for(plan, "us-east-1")
    finally:
        await kube.close()
        agent.stop()
    assert got.identity == "pod-identity:team-a/app" and got.access_key_id == "ASIAAGENT"
    assert cluster.state.count() == 0 and aws.count() == 0


@pytest.mark.parametrize(
    ("namespace", "pod", "expected"),
    [
        ("team-a", "app-0", "app-0@team-a"),
        ("ns", "p", "p@ns"),
        ("weird ns", "pöd/1", "p-d-1@weird-ns"),
    ],
)
def test_role_session_name_identifies_the_pod(namespace: str, pod: str, expected: str) -> None:
    assert role_session_name(PodInfo(namespace, pod, "uid", "sa")) == expected


def test_long_role_session_names_fit_and_stay_distinct() -> None:
    long_a = role_session_name(PodInfo("n" * 63, "a" * 253, "uid", "sa"))
    long_b = role_session_name(PodInfo("n" * 63, "a" * 252 + "b", "uid", "sa"))
    assert len(long_a) == len(long_b) == 64
    assert long_a != long_b
