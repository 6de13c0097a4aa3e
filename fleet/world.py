"""The simulated account and cluster: moto in its own process behind the quota proxy, the fake
Kubernetes API, and K `provider-aws serve` processes standing for K nodes."""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from bench.environment import moto_process
from fleet.scenarios import (
    FAILOVER,
    NAMESPACE,
    PARAMETER_POOL,
    PRIMARY,
    SECRET_POOL,
    Scenario,
    parameter_names,
    secret_names,
)
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from testkit.awsproxy import AwsProxy
from testkit.kubeapi import FakeKubeApi
from testkit.serveproc import ServeProcess, launch, wait_ready
from testkit.tls import loopback_certificate

__all__ = ["ROLE", "World", "serve_flags", "started_nodes", "started_world"]

ROLE = "arn:aws:iam::123456789012:role/fleet-reader"
SEED_KEY = "AKIDFLEETSEEDONLY"


@dataclass
class World:
    moto_url: str
    proxy: AwsProxy
    kube: FakeKubeApi
    scratch: Path

    def seed(self, service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=self.moto_url,
            aws_access_key_id=SEED_KEY,
            aws_secret_access_key="fleet-seed-secret",
        )

    def reset_counts(self) -> None:
        self.proxy.state.reset()
        with self.kube.state.lock:
            self.kube.state.gets.clear()


def _seed(world: World, service_accounts: int) -> None:
    for region in (PRIMARY, FAILOVER):
        secrets = world.seed("secretsmanager", region)
        for i in range(SECRET_POOL):
            secrets.create_secret(Name=secret_names(i), SecretString=f"value-{i:03d}-" + "x" * 48)
        ssm = world.seed("ssm", region)
        for i in range(PARAMETER_POOL):
            ssm.put_parameter(Name=parameter_names(i), Value=f"parameter-{i:02d}", Type="String")
    with world.kube.state.lock:
        for i in range(service_accounts):
            world.kube.state.service_accounts[(NAMESPACE, f"sa-{i:02d}")] = {ROLE_ARN_ANNOTATION: ROLE}


@contextmanager
def started_world(service_accounts: int) -> Iterator[World]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_process() as (host, port), tempfile.TemporaryDirectory(prefix="fleet-", dir="/tmp") as scratch:
        proxy = AwsProxy((host, port)).start()
        # HTTPS: the Go provider's client-go sends its bearer token over HTTPS only.
        kube = FakeKubeApi(loopback_certificate(Path(scratch))).start()
        try:
            world = World(f"http://{host}:{port}", proxy, kube, Path(scratch))
            _seed(world, service_accounts)
            yield world
        finally:
            kube.stop()
            proxy.stop()


def serve_flags(scenario: Scenario, simulated_nodes: int) -> list[str]:
    """`provider-aws serve` flags: every time constant of ours divided by the compression."""
    c = scenario.compression
    flags = [
        "--http-addr",
        "",
        "--log-level",
        "error",
        "--coalesce-window",
        f"{5.0 / c:g}",
        "--service-account-ttl",
        f"{30.0 / c:g}",
        "--batch-backoff-base",
        f"{2.0 / c:g}",
        "--batch-backoff-max",
        f"{120.0 / c:g}",
        "--batch-fallback-ttl",
        f"{300.0 / c:g}",
    ]
    if scenario.batch_rate_share > 0:
        # The node's share of that part of the account's batch quota, per second of compressed time.
        flags += ["--batch-rate", f"{100.0 * scenario.batch_rate_share / scenario.nodes * c:g}"]
    return flags


@asynccontextmanager
async def started_nodes(world: World, scenario: Scenario, count: int) -> AsyncIterator[list[ServeProcess]]:
    """`count` serve processes, node-0 ... node-K-1, all ready; killed on exit."""
    kubeconfig = world.kube.write_kubeconfig(world.scratch / "kubeconfig")
    nodes: list[ServeProcess] = []
    try:
        for index in range(count):
            socket_dir = world.scratch / f"n{index}"
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": str(world.scratch),
                "AWS_ENDPOINT_URL": world.proxy.url,
                "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
                "AWS_EC2_METADATA_DISABLED": "true",
                "KUBECONFIG": str(kubeconfig),
                "NODE_NAME": f"node-{index}",
            }
            log = world.scratch / f"node-{index}.log"
            nodes.append(await launch(socket_dir, log, serve_flags(scenario, count), env))
        for node in nodes:
            await wait_ready(node)
        yield nodes
    finally:
        for node in nodes:
            with contextlib.suppress(ProcessLookupError, TimeoutError):
                await node.kill()
