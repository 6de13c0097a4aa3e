"""A small rollout through the fleet harness: a real `provider-aws serve` with the simulation's
compressed flags, Mounts over its socket, the batch quota nearly empty. Every pod mounts; each
throttled batch is sent once and its secrets go through GetSecretValue. Counted, never timed."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest

from fleet.goprocs import GoProcessDriver, started_go_nodes
from fleet.ours import OursDriver
from fleet.quota import QUOTAS, QuotaGate
from fleet.run import run_scenario
from fleet.scenarios import NAMESPACE, PRIMARY, Scenario, plan_pods
from fleet.world import ROLE, World, started_nodes
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from testkit.awsproxy import AwsProxy, ProxyState
from testkit.kubeapi import FakeKubeApi
from testkit.tls import loopback_certificate
from tests.conftest import seed_client

SCENARIO = Scenario("small", nodes=100, pods=300, rollout_seconds=8.0, compression=8.0, service_accounts=50)


@pytest.fixture
def world(aws: ProxyState, aws_proxy: AwsProxy, moto_server: str, tmp_path: Path) -> Iterator[World]:
    kube = FakeKubeApi().start()
    try:
        for i in range(SCENARIO.service_accounts):
            kube.state.service_accounts[(NAMESPACE, f"sa-{i:02d}")] = {ROLE_ARN_ANNOTATION: ROLE}
        yield World(moto_server, aws_proxy, kube, tmp_path)
    finally:
        kube.stop()


@pytest.mark.asyncio
async def test_a_rollout_over_an_exhausted_batch_quota_mounts_every_pod(
    aws: ProxyState, world: World, moto_server: str
) -> None:
    scenario = SCENARIO
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    pods = plan_pods(scenario, 1)
    # three pods of three ServiceAccounts: three identities, each deciding to batch on its own
    assert len({pod.service_account for pod in pods}) == 3
    for name in sorted({name for pod in pods for name in pod.secrets}):
        sm.create_secret(Name=name, SecretString=f"value of {name}")
    # only the batch quota, and that one with a single token that never comes back
    gate = QuotaGate(scale=1e-6, quotas=QUOTAS[:1])
    aws.gate = gate
    async with started_nodes(world, scenario, 1) as nodes:
        driver = OursDriver(nodes, scenario)
        try:
            figures = await run_scenario(driver, world, scenario, pods)
        finally:
            await driver.close()
    assert len(figures.latencies) == len(pods) == 3
    assert not figures.failures and not figures.gave_up
    throttled = gate.throttled["BatchGetSecretValue"]
    assert throttled == 2
    assert figures.requests["GetSecretValue"] == 10 * throttled
    assert figures.fallbacks == throttled
    assert figures.requests["BatchGetSecretValue"] == figures.fallbacks + 1


@pytest.mark.asyncio
async def test_real_go_provider_processes_mount_and_poll_with_its_request_pattern(
    aws: ProxyState, aws_proxy: AwsProxy, moto_server: str, tmp_path: Path
) -> None:
    """The fleet's Go side: a real provider-aws-go process for the node, over HTTPS to the fake API; on
    the poll it checks each secret with DescribeSecret and reads unchanged values back from its files."""
    scenario = dataclasses.replace(SCENARIO, poll_interval=8.0, poll_rounds=1)
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    pods = plan_pods(scenario, 1)
    for name in sorted({name for pod in pods for name in pod.secrets}):
        sm.create_secret(Name=name, SecretString=f"value of {name}")
    aws.gate = QuotaGate(scenario.scaled(1))
    kube = FakeKubeApi(loopback_certificate(tmp_path)).start()
    try:
        for i in range(scenario.service_accounts):
            kube.state.service_accounts[(NAMESPACE, f"sa-{i:02d}")] = {ROLE_ARN_ANNOTATION: ROLE}
        world = World(moto_server, aws_proxy, kube, tmp_path)
        with started_go_nodes(world, scenario, 1) as sockets:
            driver = GoProcessDriver(sockets, scenario, tmp_path / "targets")
            try:
                figures = await run_scenario(driver, world, scenario, pods)
            finally:
                await driver.close()
    finally:
        kube.stop()
    assert len(figures.latencies) == len(figures.poll_latencies) == len(pods) == 3
    assert not figures.failures and not figures.poll_failures and not figures.gave_up
    # the measured phase is the poll: one STS exchange and ten DescribeSecret per pod, no value read
    assert figures.requests == {"AssumeRoleWithWebIdentity": 3, "DescribeSecret": 30}
    assert figures.kube_gets == 3
