"""IRSA against moto's STS (behind the counting proxy) and a fake kube-apiserver."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.identity.credentials import AwsCredentials, IdentityProvider
from provider_aws.identity.kube import LightkubeApi
from provider_aws.identity.regions import REGION_LABEL, RegionResolver
from provider_aws.model import MountPlan
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.clock import FakeClock
from testkit.identity import IRSA, ROLE, identity_provider, make_plan, served_cluster
from testkit.kubeapi import FakeKubeApi
from testkit.stsrelay import StsRelay

ASSUME = "AssumeRoleWithWebIdentity"
REGIONS = ("us-east-1", "eu-west-1")


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with served_cluster(tmp_path, monkeypatch) as server:
        for i in range(10):
            server.state.service_accounts[("team-a", f"sa-{i}")] = {ROLE_ARN_ANNOTATION: ROLE}
        server.state.service_accounts[("team-a", "app")] = {ROLE_ARN_ANNOTATION: ROLE}
        server.state.nodes["node-a"] = {REGION_LABEL: "eu-west-1"}
        yield server


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest_asyncio.fixture
async def identities(
    relay: StsRelay, cluster: FakeKubeApi, kube: LightkubeApi, clock: FakeClock
) -> AsyncIterator[IdentityProvider]:
    async with identity_provider(Settings(aws_max_attempts=2), kube, clock=clock) as provider:
        yield provider


def irsa_token(plan: MountPlan) -> str:
    token = plan.token_for(IRSA)
    assert token is not None
    return token.reveal()


async def gather(*calls: object) -> list[AwsCredentials]:
    return list(await asyncio.wait_for(asyncio.gather(*calls), timeout=60))  # type: ignore[call-overload]


@pytest.mark.asyncio
async def test_exchanges_the_pods_token_for_the_annotated_role(
    identities: IdentityProvider, relay: StsRelay, aws: ProxyState
) -> None:
    plan = make_plan()
    got = await identities.credentials_for(plan, "us-east-1")
    assert got.identity == f"irsa:team-a/app:{ROLE}"
    assert got.access_key_id and got.secret_access_key.reveal() and got.session_token is not None
    assert got.expiration is not None and got.expiration.tzinfo is not None
    assert aws.count(operation=ASSUME) == 1
    [exchange] = relay.state.exchanges
    assert (exchange.role_arn, exchange.session_name) == (ROLE, "app-0@team-a")
    assert exchange.token == irsa_token(plan)


@pytest.mark.asyncio
async def test_100_mounts_of_one_service_account(
    relay: StsRelay, cluster: FakeKubeApi, kube: LightkubeApi, aws: ProxyState
) -> None:
    settings = Settings(node_name="node-a")
    plans = [make_plan(pod=f"app-{i}", service_account="app") for i in range(100)]
    async with identity_provider(settings, kube) as identities:
        regions = RegionResolver(settings, kube, identities.stats.kube_gets)

        async def mount(plan: MountPlan) -> list[AwsCredentials]:
            primary = await regions.region_for(plan)
            return [await identities.credentials_for(plan, region) for region in (primary, "us-east-1")]

        results = await asyncio.wait_for(asyncio.gather(*(mount(p) for p in plans)), timeout=60)
    assert {creds[0].access_key_id for creds in results} == {results[0][0].access_key_id}
    assert cluster.state.gets == {"serviceaccounts": 1, "nodes": 1}  # node read once, no pod GET
    assert aws.count(operation=ASSUME) == 2
    assert identities.stats.sts_calls == {("eu-west-1", "ok"): 1, ("us-east-1", "ok"): 1}
    assert identities.stats.kube_gets == {("serviceaccounts", "ok"): 1, ("nodes", "ok"): 1}


@pytest.mark.asyncio
async def test_100_mounts_over_10_service_accounts(
    identities: IdentityProvider, cluster: FakeKubeApi, relay: StsRelay, aws: ProxyState
) -> None:
    plans = [make_plan(pod=f"pod-{i}", service_account=f"sa-{i % 10}") for i in range(100)]
    calls = [identities.credentials_for(p, region) for p in plans for region in REGIONS]
    results = await gather(*calls)
    assert len({c.identity for c in results}) == 10
    assert cluster.state.gets == {"serviceaccounts": 10}
    assert aws.count(operation=ASSUME) == 20
    assert identities.stats.sts_calls == {("us-east-1", "ok"): 10, ("eu-west-1", "ok"): 10}
    for result, (plan, _region) in zip(results, [(p, r) for p in plans for r in REGIONS], strict=True):
        assert result.identity == f"irsa:team-a/{plan.pod.service_account}:{ROLE}"


@pytest.mark.asyncio
async def test_same_role_two_service_accounts_never_share(
    identities: IdentityProvider, relay: StsRelay, aws: ProxyState
) -> None:
    blue = [make_plan(pod=f"blue-{i}", service_account="sa-1") for i in range(20)]
    green = [make_plan(pod=f"green-{i}", service_account="sa-2") for i in range(20)]
    results = await gather(*(identities.credentials_for(p, "us-east-1") for p in blue + green))
    blue_keys = {c.access_key_id for c in results[:20]}
    green_keys = {c.access_key_id for c in results[20:]}
    assert len(blue_keys) == 1 and len(green_keys) == 1 and blue_keys != green_keys
    assert {c.identity for c in results[:20]} == {f"irsa:team-a/sa-1:{ROLE}"}
    assert {c.identity for c in results[20:]} == {f"irsa:team-a/sa-2:{ROLE}"}
    assert aws.count(operation=ASSUME) == 2
    # each exchange carried a token of its own ServiceAccount
    owners = {irsa_token(p): p for p in blue + green}
    subjects = {owners[e.token].pod.service_account: e.session_name for e in relay.state.exchanges}
    assert set(subjects) == {"sa-1", "sa-2"}
    assert subjects["sa-1"].startswith("blue-") and subjects["sa-2"].startswith("green-")


@pytest.mark.asyncio
async def test_credentials_are_reused_until_the_refresh_margin(
    identities: IdentityProvider, clock: FakeClock, aws: ProxyState
) -> None:
    first = await identities.credentials_for(make_plan(), "us-east-1")
    assert first.expiration is not None
    clock.now += 3000  # moto's credentials live 3600 s; the margin is 300 s
    assert await identities.credentials_for(make_plan(pod="app-1"), "us-east-1") is first
    assert aws.count(operation=ASSUME) == 1
    clock.now += 301
    renewed = await identities.credentials_for(make_plan(pod="app-2"), "us-east-1")
    assert renewed is not first and renewed.access_key_id != first.access_key_id
    assert aws.count(operation=ASSUME) == 2


@pytest.mark.asyncio
async def test_credentials_inside_the_margin_are_never_kept(
    relay: StsRelay, cluster: FakeKubeApi, kube: LightkubeApi, aws: ProxyState
) -> None:
    async with identity_provider(Settings(credential_refresh_margin=4000), kube) as identities:
        await identities.credentials_for(make_plan(), "us-east-1")
        await identities.credentials_for(make_plan(), "us-east-1")
    assert aws.count(operation=ASSUME) == 2


@pytest.mark.asyncio
async def test_cache_size_zero_disables_caching_but_still_coalesces(
    relay: StsRelay, cluster: FakeKubeApi, kube: LightkubeApi, aws: ProxyState
) -> None:
    async with identity_provider(Settings(credential_cache_size=0), kube) as identities:
        await gather(*(identities.credentials_for(make_plan(pod=f"p{i}"), "us-east-1") for i in range(30)))
        assert aws.count(operation=ASSUME) == 1
        await identities.credentials_for(make_plan(), "us-east-1")
    assert aws.count(operation=ASSUME) == 2
    assert cluster.state.gets == {"serviceaccounts": 2}


@pytest.mark.asyncio
async def test_service_account_lookups_are_kept_for_their_ttl(
    identities: IdentityProvider, cluster: FakeKubeApi, clock: FakeClock, aws: ProxyState
) -> None:
    other = "arn:aws:iam::123456789012:role/other"
    first = await identities.credentials_for(make_plan(), "us-east-1")
    cluster.state.service_accounts[("team-a", "app")] = {ROLE_ARN_ANNOTATION: other}
    clock.now += 29
    assert await identities.credentials_for(make_plan(), "us-east-1") is first
    assert cluster.state.gets == {"serviceaccounts": 1}
    clock.now += 1  # service_account_ttl is 30 s
    changed = await identities.credentials_for(make_plan(), "us-east-1")
    assert changed.identity == f"irsa:team-a/app:{other}"
    assert cluster.state.gets == {"serviceaccounts": 2}
    assert aws.count(operation=ASSUME) == 2


@pytest.mark.asyncio
async def test_a_removed_annotation_takes_effect_within_the_ttl(
    identities: IdentityProvider, cluster: FakeKubeApi, clock: FakeClock
) -> None:
    await identities.credentials_for(make_plan(), "us-east-1")
    cluster.state.service_accounts[("team-a", "app")] = {}
    clock.now += 31
    with pytest.raises(Exception, match="An IAM role must be associated"):
        await identities.credentials_for(make_plan(), "us-east-1")


def test_settings_defaults_used_here() -> None:
    """The TTL and margin the tests above step over are the documented defaults."""
    defaults = Settings()
    assert (defaults.service_account_ttl, defaults.credential_refresh_margin) == (30.0, 300.0)
