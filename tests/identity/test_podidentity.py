"""EKS Pod Identity against fake agents on 127.0.0.1 and [::1]."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import AbstractAsyncContextManager
from dataclasses import replace
from datetime import timedelta

import pytest
import pytest_asyncio

from provider_aws.errors import AccessDeniedError, PreconditionError, UnavailableError
from provider_aws.identity.credentials import IdentityProvider
from provider_aws.identity.kube import LightkubeApi
from provider_aws.model import AddressPreference, MountPlan
from provider_aws.settings import Settings
from testkit.identity import IRSA, POD_IDENTITY, identity_provider, make_plan
from testkit.podagent import FakePodIdentityAgent, closed_port_url


def token_of(plan: MountPlan) -> str:
    token = plan.token_for(POD_IDENTITY)
    assert token is not None
    return token.reveal()


@pytest.fixture
def ipv4() -> Iterator[FakePodIdentityAgent]:
    agent = FakePodIdentityAgent("127.0.0.1").start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest.fixture
def ipv6() -> Iterator[FakePodIdentityAgent]:
    agent = FakePodIdentityAgent("::1").start()
    try:
        yield agent
    finally:
        agent.stop()


@pytest_asyncio.fixture
async def kube(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[LightkubeApi]:
    # Pod Identity needs no Kubernetes read at all: a broken config proves it.
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    api = LightkubeApi()
    try:
        yield api
    finally:
        await api.close()


def provider(
    kube: LightkubeApi, ipv4_url: str, ipv6_url: str, **changes: object
) -> AbstractAsyncContextManager[IdentityProvider]:
    base = Settings(
        pod_identity_endpoint_ipv4=ipv4_url, pod_identity_endpoint_ipv6=ipv6_url, pod_identity_timeout=5
    )
    settings = replace(base, **changes)  # type: ignore[arg-type]
    return identity_provider(settings, kube)


@pytest.mark.asyncio
async def test_agent_answers_with_the_pods_credentials(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    plan = make_plan(use_pod_identity=True)
    ipv4.state.accept(token_of(plan), "ASIAPODIDENTITY")
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        east = await identities.credentials_for(plan, "us-east-1")
        west = await identities.credentials_for(plan, "eu-west-1")
    assert east is west  # the agent's answer does not depend on the region
    assert east.identity == "pod-identity:team-a/app"
    assert east.access_key_id == "ASIAPODIDENTITY"
    assert east.secret_access_key.reveal() == "secret-for-ASIAPODIDENTITY"
    assert east.session_token is not None and east.session_token.reveal() == "session-for-ASIAPODIDENTITY"
    assert east.expiration is not None
    assert ipv4.state.authorizations == [token_of(plan)]  # the bare token, as the agent expects
    assert ipv6.state.requests == 0


@pytest.mark.asyncio
async def test_100_concurrent_mounts_make_one_agent_request(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    plans = [make_plan(pod=f"app-{i}", use_pod_identity=True) for i in range(100)]
    for plan in plans:
        ipv4.state.accept(token_of(plan), "ASIASHARED")
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        calls = (identities.credentials_for(p, r) for p in plans for r in ("us-east-1", "eu-west-1"))
        results = await asyncio.wait_for(asyncio.gather(*calls), timeout=30)
    assert {c.access_key_id for c in results} == {"ASIASHARED"}
    assert ipv4.state.requests == 1
    assert identities.stats.agent_calls == {("ipv4", "ok"): 1}


@pytest.mark.asyncio
async def test_service_accounts_get_their_own_agent_credentials(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    blue = make_plan(pod="blue", service_account="blue", use_pod_identity=True)
    green = make_plan(pod="green", service_account="green", use_pod_identity=True)
    ipv4.state.accept(token_of(blue), "ASIABLUE")
    ipv4.state.accept(token_of(green), "ASIAGREEN")
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        got = await asyncio.gather(*(identities.credentials_for(p, "us-east-1") for p in (blue, green) * 5))
    assert [c.access_key_id for c in got] == ["ASIABLUE", "ASIAGREEN"] * 5
    assert sorted(ipv4.state.authorizations) == sorted([token_of(blue), token_of(green)])


@pytest.mark.asyncio
async def test_auto_falls_back_to_ipv6_when_ipv4_is_closed(
    kube: LightkubeApi, ipv6: FakePodIdentityAgent
) -> None:
    plan = make_plan(use_pod_identity=True)
    ipv6.state.accept(token_of(plan), "ASIAVIAIPV6")
    async with provider(kube, closed_port_url("127.0.0.1"), ipv6.url) as identities:
        got = await identities.credentials_for(plan, "us-east-1")
    assert got.access_key_id == "ASIAVIAIPV6"
    assert identities.stats.agent_calls == {("ipv4", "error"): 1, ("ipv6", "ok"): 1}  # closed port


@pytest.mark.asyncio
async def test_auto_falls_back_to_ipv6_when_ipv4_fails(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    plan = make_plan(use_pod_identity=True)
    ipv4.state.fail_status = 503
    ipv6.state.accept(token_of(plan), "ASIAVIAIPV6")
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        assert (await identities.credentials_for(plan, "us-east-1")).access_key_id == "ASIAVIAIPV6"
    assert (ipv4.state.requests, ipv6.state.requests) == (1, 1)


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("preference", "asked_v4", "asked_v6"),
    [(AddressPreference.IPV6, 0, 1), (AddressPreference.IPV4, 1, 0), (AddressPreference.AUTO, 1, 0)],
)
async def test_preferred_address_type(
    kube: LightkubeApi,
    ipv4: FakePodIdentityAgent,
    ipv6: FakePodIdentityAgent,
    *,
    preference: AddressPreference,
    asked_v4: int,
    asked_v6: int,
) -> None:
    plan = make_plan(use_pod_identity=True, preferred_address=preference)
    ipv4.state.accept(token_of(plan), "ASIAV4")
    ipv6.state.accept(token_of(plan), "ASIAV6")
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        got = await identities.credentials_for(plan, "us-east-1")
    assert got.access_key_id == ("ASIAV6" if asked_v6 else "ASIAV4")
    assert (ipv4.state.requests, ipv6.state.requests) == (asked_v4, asked_v6)


@pytest.mark.asyncio
async def test_ipv4_only_does_not_try_ipv6(kube: LightkubeApi, ipv6: FakePodIdentityAgent) -> None:
    plan = make_plan(use_pod_identity=True, preferred_address=AddressPreference.IPV4)
    ipv6.state.accept(token_of(plan), "ASIAV6")
    async with provider(kube, closed_port_url(), ipv6.url) as identities:
        with pytest.raises(UnavailableError, match="Pod Identity agent did not answer"):
            await identities.credentials_for(plan, "us-east-1")
    assert ipv6.state.requests == 0


@pytest.mark.asyncio
async def test_refused_token_is_permission_denied_without_the_token(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    plan = make_plan(use_pod_identity=True)
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        with pytest.raises(AccessDeniedError) as caught:
            await identities.credentials_for(plan, "us-east-1")
    message = str(caught.value)
    assert "ServiceAccount app (namespace: team-a)" in message and "HTTP 403" in message
    assert token_of(plan) not in message  # the fake agent echoes the token; we must not
    assert ipv6.state.requests == 0  # a refusal is final, the other address is not asked
    assert identities.stats.agent_calls == {("ipv4", "denied"): 1}


@pytest.mark.asyncio
async def test_unreachable_agent_is_unavailable(kube: LightkubeApi) -> None:
    async with provider(kube, closed_port_url("127.0.0.1"), closed_port_url("::1")) as identities:
        with pytest.raises(UnavailableError, match="eks-pod-identity-agent runs on this node"):
            await identities.credentials_for(make_plan(use_pod_identity=True), "us-east-1")
    assert identities.stats.agent_calls == {("ipv4", "error"): 1, ("ipv6", "error"): 1}


@pytest.mark.asyncio
async def test_silent_agent_times_out_as_unavailable(kube: LightkubeApi) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)  # accepts connections in the kernel, never answers
        url = f"http://127.0.0.1:{silent.getsockname()[1]}/v1/credentials"
        async with provider(kube, url, closed_port_url("::1"), pod_identity_timeout=0.3) as identities:
            with pytest.raises(UnavailableError, match=r"TimeoutError|ServerTimeoutError"):
                await asyncio.wait_for(
                    identities.credentials_for(make_plan(use_pod_identity=True), "us-east-1"), timeout=10
                )


@pytest.mark.asyncio
async def test_missing_pod_identity_token_names_the_audience(kube: LightkubeApi) -> None:
    async with provider(kube, closed_port_url(), closed_port_url("::1")) as identities:
        plan = make_plan(audiences=(IRSA,), use_pod_identity=True)
        expected = r"no token for audience pods\.eks\.amazonaws\.com.*tokenRequests"
        with pytest.raises(PreconditionError, match=expected):
            await identities.credentials_for(plan, "us-east-1")


@pytest.mark.asyncio
async def test_short_lived_agent_credentials_are_not_kept(
    kube: LightkubeApi, ipv4: FakePodIdentityAgent, ipv6: FakePodIdentityAgent
) -> None:
    plan = make_plan(use_pod_identity=True)
    ipv4.state.accept(token_of(plan), "ASIASHORT", lifetime=timedelta(minutes=4))  # inside the 5 min margin
    async with provider(kube, ipv4.url, ipv6.url) as identities:
        await identities.credentials_for(plan, "us-east-1")
        await identities.credentials_for(plan, "us-east-1")
    assert ipv4.state.requests == 2
