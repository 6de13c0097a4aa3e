"""Load on a real `provider-aws serve` child: 1,000 concurrent Mounts over one socket, twice.

Each Mount names one of a few secrets, so every caller can check that it got its own answer. Sharing of
identical AWS calls is turned off (`--coalesce-window 0`): each Mount sends its own request, and the
proxy in front of moto counts them and the most it saw at once, which the process-wide limit
(`--max-concurrency`) must bound. Memory is the child's VmRSS after each round.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable
from pathlib import Path

import pytest
from grpclib.client import Channel

from testkit.awsproxy import ProxyState
from testkit.betterproto_api.v1alpha1 import CsiDriverProviderStub, MountRequest
from testkit.requests import STATIC, pod_attributes
from testkit.scrape import get, parse_metrics, value
from testkit.serveproc import serve_process
from tests.conftest import seed_client

REGION = "ap-southeast-2"
MOUNTS = 1000
SECRETS = 20
LIMIT = 16
CALL_TIMEOUT = 60.0
# grpclib's server (h2) allows 100 concurrent streams per connection; more wait on the client side.
CONNECTIONS = 10
# How long the first AWS answers are held while the Mounts pile up inside the provider (measured: all
# 1,000 are inside about 1 s after the first is sent). Below the child's AWS read timeout, so that no
# held request is abandoned and retried while the proxy still counts it in flight.
HOLD_SECONDS = 8.0
# RSS may grow this much from the first round to the second: caches are bounded, nothing per Mount stays.
GROWTH_BOUND_KIB = 20 * 1024
# Measured: about 60 MiB idle, 102 MiB after 1,000 Mounts in flight at once (about 40 KiB each, kept
# by the allocator afterwards). The DaemonSet requests 128 MiB; a provider past that under this load is
# a regression worth failing on.
ABSOLUTE_BOUND_KIB = 128 * 1024


def secret_name(index: int) -> str:
    return f"load-{index % SECRETS}"


def secret_value(name: str) -> bytes:
    return f"the value of {name}".encode()


def request_for(index: int) -> MountRequest:
    pod = f"load-{index}"
    return MountRequest(
        attributes=pod_attributes(
            f"- objectName: {secret_name(index)}\n  objectType: secretsmanager\n",
            pod=pod,
            namespace="load",
            region=REGION,
        ),
        secrets=STATIC,
        target_path=f"/var/lib/kubelet/pods/{pod}/volumes/kubernetes.io~csi/secrets/mount",
        permission="420",
    )


async def in_flight_mounts(metrics_url: str) -> float:
    status, text = await get(metrics_url)
    assert status == 200
    return value(parse_metrics(text), "provider_aws_mounts_in_flight")


async def wait_until_all_inside(metrics_url: str) -> float:
    """Seconds until every Mount is in flight in the provider; bounded by the hold at the proxy."""
    started = time.monotonic()
    async with asyncio.timeout(HOLD_SECONDS):
        while await in_flight_mounts(metrics_url) < MOUNTS:  # noqa: ASYNC110 - polls another process
            await asyncio.sleep(0.05)
    return time.monotonic() - started


async def one_round(stubs: list[CsiDriverProviderStub], inside: Awaitable[None] | None = None) -> int:
    """All Mounts at once, spread over the connections; the number answered with the caller's own file.

    `inside`, if given, is awaited while the Mounts are running.
    """

    async def mount(index: int) -> bool:
        stub = stubs[index % len(stubs)]
        reply = await stub.mount(request_for(index), timeout=CALL_TIMEOUT)
        name = secret_name(index)
        return [(f.path, f.mode, f.contents) for f in reply.files] == [(name, 0o644, secret_value(name))]

    async with asyncio.TaskGroup() as group:
        calls = [group.create_task(mount(index)) for index in range(MOUNTS)]
        if inside is not None:
            await inside
    return sum(call.result() for call in calls)


@pytest.mark.asyncio
@pytest.mark.timeout(150)
async def test_thousand_concurrent_mounts_twice_over_one_socket(
    aws: ProxyState, moto_server: str, socket_dir: Path, tmp_path: Path
) -> None:
    client = seed_client(moto_server, "secretsmanager", REGION)
    for index in range(SECRETS):
        client.create_secret(Name=secret_name(index), SecretString=secret_value(secret_name(index)).decode())
    flags = [
        *("--max-concurrency", str(LIMIT), "--coalesce-window", "0"),
        *("--aws-read-timeout", str(HOLD_SECONDS * 2), "--http-addr", "127.0.0.1:0"),
    ]
    async with serve_process(socket_dir, tmp_path / "serve.log", flags) as child:
        metrics_url = f"{child.http_url()}/metrics"
        started_kib = child.rss_kib()
        channels = [Channel(path=str(child.socket_path)) for _ in range(CONNECTIONS)]
        try:
            stubs = [CsiDriverProviderStub(channel) for channel in channels]

            piled_up: list[float] = []

            async def all_inside_then_release() -> None:
                piled_up.append(await wait_until_all_inside(metrics_url))
                # None has its answer: the first AWS requests are still held at the proxy.
                assert aws.count() == 0
                aws.delay = 0.0

            # First round: AWS answers are held until every Mount is inside the provider at once.
            aws.delay = HOLD_SECONDS
            first = await one_round(stubs, all_inside_then_release())
            warm_kib = child.rss_kib()
            started = time.monotonic()
            second = await one_round(stubs)
            seconds = time.monotonic() - started
            after_kib = child.rss_kib()
        finally:
            for channel in channels:
                channel.close()
    print(
        f"\n{MOUNTS} concurrent Mounts over {CONNECTIONS} connections, all inside after {piled_up[0]:.1f} s; "
        f"second round {seconds:.1f} s; "
        f"VmRSS {started_kib / 1024:.1f} MiB idle, {warm_kib / 1024:.1f} MiB after the first round, "
        f"{after_kib / 1024:.1f} MiB after the second; "
        f"AWS requests {aws.count()}, at most {aws.max_in_flight} at once (limit {LIMIT})"
    )
    assert (first, second) == (MOUNTS, MOUNTS)
    assert aws.count(operation="BatchGetSecretValue") + aws.count(operation="GetSecretValue") == 2 * MOUNTS
    assert 1 < aws.max_in_flight <= LIMIT
    assert after_kib - warm_kib < GROWTH_BOUND_KIB
    assert after_kib < ABSOLUTE_BOUND_KIB
    assert "Traceback" not in child.log()
