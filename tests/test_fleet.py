"""The fleet simulation's parts, counted over real protocols: the quota gate answers as AWS does,
a throttled STS exchange is tried again rather than failing the Mount, and the Go pattern model
sends what the Go provider sends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import boto3
import pytest
from aiobotocore.session import get_session
from botocore.config import Config
from botocore.exceptions import ClientError

from fleet.gopattern import GoDriver
from fleet.quota import QuotaGate
from fleet.scenarios import FAILOVER, NAMESPACE, PRIMARY, Pod, Scenario
from fleet.world import ROLE as FLEET_ROLE
from fleet.world import World
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.aws.clients import AwsClients
from provider_aws.identity.credentials import IdentityProvider, sts_attempts
from provider_aws.identity.kube import LightkubeApi
from provider_aws.settings import Settings
from testkit.awsproxy import AwsProxy, Fault, ProxyState
from testkit.identity import ROLE, make_plan, served_cluster
from testkit.kubeapi import FakeKubeApi
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

ASSUME = "AssumeRoleWithWebIdentity"


def client(proxy: AwsProxy, service: str, region: str = PRIMARY) -> object:
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=proxy.url,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}),
    )


def test_the_quota_gate_throttles_per_operation_and_region_as_aws_answers(
    aws: ProxyState, aws_proxy: AwsProxy, moto_server: str
) -> None:
    seed_client(moto_server, "secretsmanager", PRIMARY).create_secret(Name="s", SecretString="v")
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(Name="s", SecretString="v")
    gate = QuotaGate(scale=0.001)  # every bucket holds one token and refills in seconds
    aws.gate = gate
    primary, failover = client(aws_proxy, "secretsmanager"), client(aws_proxy, "secretsmanager", FAILOVER)
    primary.batch_get_secret_value(SecretIdList=["s"])  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as throttled:
        primary.batch_get_secret_value(SecretIdList=["s"])  # type: ignore[attr-defined]
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    assert throttled.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    # a quota per region, and per operation
    failover.batch_get_secret_value(SecretIdList=["s"])  # type: ignore[attr-defined]
    primary.get_secret_value(SecretId="s")  # type: ignore[attr-defined]

    sts = client(aws_proxy, "sts")
    token = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0."
    sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="fleet-test", WebIdentityToken=token)  # type: ignore[attr-defined]
    with pytest.raises(ClientError) as sts_throttled:
        sts.assume_role_with_web_identity(RoleArn=ROLE, RoleSessionName="fleet-test", WebIdentityToken=token)  # type: ignore[attr-defined]
    assert sts_throttled.value.response["Error"]["Code"] == "Throttling"
    assert gate.throttled == {"BatchGetSecretValue": 1, ASSUME: 1}


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    with served_cluster(tmp_path, monkeypatch) as server:
        server.state.service_accounts[("team-a", "app")] = {ROLE_ARN_ANNOTATION: ROLE}
        server.state.service_accounts[(NAMESPACE, "sa-00")] = {ROLE_ARN_ANNOTATION: FLEET_ROLE}
        yield server


def first_throttled(count: int) -> Callable[[str, str, str], Fault | None]:
    left = [count]

    def gate(service: str, operation: str, region: str) -> Fault | None:
        if operation == ASSUME and left[0] > 0:
            left[0] -= 1
            return Fault(status=400, code="Throttling", message="Rate exceeded", xml=True)
        return None

    return gate


@pytest.mark.asyncio
async def test_a_throttled_sts_exchange_is_tried_again_not_failed(
    aws: ProxyState, cluster: FakeKubeApi
) -> None:
    aws.gate = first_throttled(3)
    kube = LightkubeApi(timeout=5)
    settings = Settings(aws_max_attempts=2)
    clients = AwsClients(settings, get_session(), attempts=sts_attempts(settings))
    identities = IdentityProvider(settings, clients, kube)
    try:
        got = await identities.credentials_for(make_plan(), PRIMARY)
    finally:
        await identities.close()
        await clients.close()
        await kube.close()
    assert got.session_token is not None
    # two attempts for every other request, two more for STS: three throttled, the fourth answered
    assert aws.count(operation=ASSUME) == 4


@pytest.fixture
def world(aws_proxy: AwsProxy, moto_server: str, cluster: FakeKubeApi, tmp_path: Path) -> World:
    return World(moto_server, aws_proxy, cluster, tmp_path)


@pytest.mark.asyncio
@pytest.mark.parametrize("outage", [False, True])
async def test_the_go_model_sends_the_go_providers_request_pattern(
    aws: ProxyState, moto_server: str, cluster: FakeKubeApi, world: World, outage: bool
) -> None:
    for region in (PRIMARY, FAILOVER):
        sm = seed_client(moto_server, "secretsmanager", region)
        for i in range(3):
            sm.create_secret(Name=f"fleet/s-{i:03d}", SecretString=f"v{i}")
        seed_client(moto_server, "ssm", region).put_parameter(Name="/fleet/p-00", Value="p", Type="String")
    pod = Pod("pod-0", 0, "sa-00", 0.0, tuple(f"fleet/s-{i:03d}" for i in range(3)), ("/fleet/p-00",))
    regions = 2 if outage else 1
    go = GoDriver(world, Scenario("test", outage=outage), nodes=1)
    try:
        _, status, versions = await go.mount(pod, ())
        assert status == "OK"
        # per region: the ServiceAccount, one exchange, every secret (the region loop has no break)
        assert cluster.state.gets == {"serviceaccounts": regions}
        assert aws.operations() == {ASSUME: regions, "GetSecretValue": 3 * regions, "GetParameters": regions}
        if outage:
            return  # moto's two regions hold different VersionIds; replicated secrets share theirs
        aws.calls.clear()
        _, status, _ = await go.mount(pod, versions)
        assert status == "OK"
        # a poll: DescribeSecret per secret, nothing fetched again (values read back from the volume)
        assert aws.operations() == {ASSUME: 1, "DescribeSecret": 3, "GetParameters": 1}
    finally:
        await go.close()
