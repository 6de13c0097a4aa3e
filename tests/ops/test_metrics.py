"""Metrics after real Mounts: socket -> build_provider -> moto, scraped over HTTP from /metrics."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from provider_aws import __version__
from provider_aws.app import observed_provider
from provider_aws.aws.rotation import RotationStats, ValueCache, ValueKey
from provider_aws.aws.sharing import CallStats
from provider_aws.errors import CallOutcome
from provider_aws.identity.credentials import IdentityStats
from provider_aws.identity.regions import REGION_LABEL
from provider_aws.model import SecretBytes
from provider_aws.ops.health import health_endpoint
from provider_aws.ops.metrics import Metrics
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.handlers import Held
from testkit.identity import served_cluster
from testkit.kubeapi import FakeKubeApi
from testkit.requests import REGION, STATIC, pod_attributes
from testkit.scrape import Samples, get_page, parse_metrics, value
from tests.conftest import seed_client

NODE = "node-a"
WAIT_LIMIT = 10.0


@dataclass
class Stack:
    client: GrpcioProviderClient
    url: str
    cluster: FakeKubeApi
    gate: Held

    async def mount(self, objects: str, **kwargs: str) -> object:
        return await asyncio.to_thread(
            self.client.mount, attributes=pod_attributes(objects, region=None, **kwargs), secrets=STATIC
        )

    async def scrape(self) -> tuple[str, Samples]:
        status, content_type, text = await get_page(f"{self.url}/metrics")
        assert status == 200
        return content_type, parse_metrics(text)


@pytest_asyncio.fixture
async def stack(aws: ProxyState, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Stack]:
    with served_cluster(tmp_path, monkeypatch) as cluster, short_socket_dir() as socket_dir:
        cluster.state.nodes[NODE] = {REGION_LABEL: REGION}
        settings = Settings(socket_dir=socket_dir, shutdown_grace=5.0, aws_max_attempts=1, node_name=NODE)
        release = asyncio.Event()
        release.set()
        async with observed_provider(settings) as served:
            gate = Held(served.handler, asyncio.Event(), release)
            async with (
                running_provider(settings, gate, observer=served.observer),
                health_endpoint("127.0.0.1:0", settings.socket_path, served.metrics) as http,
            ):
                assert http is not None
                host, port = http.address
                with GrpcioProviderClient(settings.socket_path) as client:
                    yield Stack(client, f"http://{host}:{port}", cluster, gate)


@pytest.mark.asyncio
async def test_mount_aws_and_kubernetes_counts_after_real_mounts(
    aws: ProxyState, moto_server: str, stack: Stack
) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    sm.create_secret(Name="app/db", SecretString="db-value")
    sm.create_secret(Name="app/api", SecretString="api-value")
    seed_client(moto_server, "ssm", REGION).put_parameter(Name="/app/flag", Value="on", Type="String")
    good = (
        "- objectName: app/db\n  objectType: secretsmanager\n"
        "- objectName: app/api\n  objectType: secretsmanager\n"
        "- objectName: /app/flag\n  objectType: ssmparameter\n  objectAlias: flag\n"
    )
    await stack.mount(good, pod="web-0")
    await stack.mount(good, pod="web-1")
    with pytest.raises(grpc.RpcError) as missing:
        await stack.mount("- objectName: app/missing\n  objectType: secretsmanager\n", pod="web-2")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    with pytest.raises(grpc.RpcError) as invalid:
        await stack.mount("- objectName: x\n  objectType: bogus\n", pod="web-3")
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT

    content_type, samples = await stack.scrape()
    assert content_type.startswith("text/plain; version=")
    mounts = "provider_aws_mounts_total"
    assert value(samples, mounts, outcome="ok", code="OK") == 2
    assert value(samples, mounts, outcome="error", code="NOT_FOUND") == 1
    assert value(samples, mounts, outcome="error", code="INVALID_ARGUMENT") == 1
    duration = "provider_aws_mount_duration_seconds_count"
    assert value(samples, duration, outcome="ok", code="OK") == 2
    assert value(samples, duration, outcome="error", code="NOT_FOUND") == 1
    assert value(samples, "provider_aws_mounts_in_flight") == 0
    assert value(samples, "provider_aws_build_info", version=__version__) == 1

    # Every AWS call the proxy saw is counted once, under its service and outcome.
    aws_total = sum(v for (name, _), v in samples.items() if name == "provider_aws_aws_requests_total")
    assert aws_total == aws.count() > 0
    sm_success = sum(
        v
        for (name, labels), v in samples.items()
        if name == "provider_aws_aws_requests_total"
        and ("service", "secretsmanager") in labels
        and ("outcome", "success") in labels
    )
    assert sm_success >= 2  # one value request per good Mount at least
    assert value(
        samples,
        "provider_aws_aws_requests_total",
        service="ssm",
        operation="get_parameters",
        outcome="success",
    ) == aws.count(service="ssm")

    # The rotation layer's value requests are the value calls the proxy saw.
    value_calls = sum(
        aws.count(operation=op) for op in ("BatchGetSecretValue", "GetSecretValue", "GetParameters")
    )
    assert value(samples, "provider_aws_value_requests_total") == value_calls
    # No Mount here carried mounted versions: the rotation counters, true to their names, stay at 0
    # (rotation_fetches_total once counted every value request as rotation's).
    for rotation in ("polls", "checks", "changed", "value_cache_hits", "value_cache_misses", "describes"):
        assert value(samples, f"provider_aws_rotation_{rotation}_total") == 0
    # The values fetched are in the value cache now, for later polls of the same identity.
    assert value(samples, "provider_aws_value_cache_entries") == 2
    assert value(samples, "provider_aws_value_cache_bytes") > 0
    # ...and each AWS call was timed, under the class of its outcome.
    timed = sum(
        v for (name, _), v in samples.items() if name == "provider_aws_aws_request_duration_seconds_count"
    )
    assert timed == aws_total
    get_parameters = {"service": "ssm", "operation": "get_parameters", "outcome": "ok"}
    assert value(samples, "provider_aws_aws_request_duration_seconds_count", **get_parameters) == aws.count(
        service="ssm"
    )
    assert value(samples, "provider_aws_aws_request_duration_seconds_sum", **get_parameters) > 0

    # Labels name kinds of things, never the pods or objects of the Mounts.
    label_values = {value for _, labels in samples for _, value in labels}
    assert not label_values & {"web-0", "web-1", "web-2", "app/db", "app/api", "/app/flag", "flag"}

    # The node's region was read once from Kubernetes and then cached; static credentials need no STS.
    assert stack.cluster.state.count("nodes") == 1
    assert value(samples, "provider_aws_kubernetes_requests_total", resource="nodes", outcome="ok") == 1
    assert value(samples, "provider_aws_credential_requests_total") >= 3
    assert not any(name == "provider_aws_sts_requests_total" for name, _ in samples)


@pytest.mark.asyncio
async def test_in_flight_gauge_follows_a_held_mount(aws: ProxyState, moto_server: str, stack: Stack) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="held", SecretString="v")
    stack.gate.release.clear()
    mount = asyncio.create_task(stack.mount("- objectName: held\n  objectType: secretsmanager\n"))
    async with asyncio.timeout(WAIT_LIMIT):
        await stack.gate.entered.wait()
    _, during = await stack.scrape()
    assert value(during, "provider_aws_mounts_in_flight") == 1
    assert value(during, "provider_aws_mounts_total", outcome="ok", code="OK") == 0
    stack.gate.release.set()
    async with asyncio.timeout(WAIT_LIMIT):
        await mount
    _, after = await stack.scrape()
    assert value(after, "provider_aws_mounts_in_flight") == 0
    assert value(after, "provider_aws_mounts_total", outcome="ok", code="OK") == 1


def test_rotation_counters_are_read_at_scrape_time() -> None:
    metrics = Metrics(version="1.2.3")
    stats = RotationStats()
    calls = CallStats()
    values = ValueCache(1 << 20, max_age=120.0)
    metrics.watch_rotation(stats, calls, values)
    stats.checks += 3
    calls.coalesced += 1
    calls.fetches += 7  # value requests of first Mounts: not rotation's
    key = ValueKey("static:A", "eu-west-1", "app/db", "v1")
    values.put(key, SecretBytes(b"12345"))
    samples = parse_metrics(metrics.exposition().decode())
    assert value(samples, "provider_aws_rotation_checks_total") == 3
    assert value(samples, "provider_aws_shared_calls_total") == 1
    assert value(samples, "provider_aws_value_requests_total") == 7
    assert value(samples, "provider_aws_rotation_polls_total") == 0
    assert not any(name == "provider_aws_rotation_fetches_total" for name, _ in samples)
    assert value(samples, "provider_aws_value_cache_entries") == 1
    assert value(samples, "provider_aws_value_cache_bytes") == key.cost() + 5
    assert value(samples, "provider_aws_build_info", version="1.2.3") == 1


def test_identity_cache_callbacks_reach_their_metrics() -> None:
    metrics = Metrics()
    stats = IdentityStats()
    metrics.watch_identity(stats)
    stats.credential_hit()
    stats.credential_hit()
    stats.service_account_joined()
    stats.kube_gets[("nodes", "ok")] += 1
    samples = parse_metrics(metrics.exposition().decode())
    assert value(samples, "provider_aws_identity_credential_cache_hits_total") == 2
    assert value(samples, "provider_aws_identity_service_account_calls_coalesced_total") == 1
    assert value(samples, "provider_aws_identity_credential_calls_coalesced_total") == 0
    assert value(samples, "provider_aws_kubernetes_requests_total", resource="nodes", outcome="ok") == 1


def test_two_metrics_objects_do_not_share_a_registry() -> None:
    first, second = Metrics(), Metrics()
    first.aws_call("ssm", "get_parameters", "success", CallOutcome.OK, 0.02)
    assert (
        value(
            parse_metrics(first.exposition().decode()),
            "provider_aws_aws_requests_total",
            service="ssm",
            operation="get_parameters",
            outcome="success",
        )
        == 1
    )
    assert not any(
        name == "provider_aws_aws_requests_total" for name, _ in parse_metrics(second.exposition().decode())
    )


@dataclass(slots=True)
class GrownIdentityStats(IdentityStats):
    """IdentityStats as the identity layer may grow it: one more counter."""

    credential_cache_hits: int = 0


def test_identity_collector_reads_live_stats_and_new_counters() -> None:
    metrics = Metrics()
    stats = GrownIdentityStats()
    metrics.watch_identity(stats)
    stats.kube_gets[("serviceaccounts", "ok")] += 2
    stats.kube_gets[("serviceaccounts", "throttled")] += 1
    stats.sts_calls[("eu-west-1", "denied")] += 1
    stats.agent_calls[("ipv6", "error")] += 3
    stats.credential_requests += 7
    stats.credential_cache_hits += 4
    samples = parse_metrics(metrics.exposition().decode())
    kube = "provider_aws_kubernetes_requests_total"
    assert value(samples, kube, resource="serviceaccounts", outcome="ok") == 2
    assert value(samples, kube, resource="serviceaccounts", outcome="throttled") == 1
    assert value(samples, "provider_aws_sts_requests_total", region="eu-west-1", outcome="denied") == 1
    assert (
        value(samples, "provider_aws_pod_identity_agent_requests_total", family="ipv6", outcome="error") == 3
    )
    assert value(samples, "provider_aws_credential_requests_total") == 7
    assert value(samples, "provider_aws_identity_credential_cache_hits_total") == 4
