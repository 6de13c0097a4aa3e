"""Whole Mounts through the real socket, the real composition (build_provider) and moto over HTTP."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio

from provider_aws.app import build_provider
from provider_aws.settings import Settings
from testkit.awsproxy import Fault, ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.requests import REGION, SEED_DOC, STATIC, pod_attributes, seed_objects
from tests.conftest import seed_client

FAILOVER = "eu-central-1"


@dataclass
class Running:
    client: GrpcioProviderClient

    async def mount(self, attrs: str, **kwargs: object) -> object:
        return await asyncio.to_thread(self.client.mount, attributes=attrs, secrets=STATIC, **kwargs)  # type: ignore[arg-type]


@pytest_asyncio.fixture
async def provider(aws: ProxyState) -> AsyncIterator[Running]:
    with short_socket_dir() as socket_dir:
        # batch_min_secrets=2: the seed document's two secrets go in one batch, as this test counts
        settings = Settings(
            socket_dir=Path(socket_dir), shutdown_grace=5.0, aws_max_attempts=2, batch_min_secrets=2
        )
        async with build_provider(settings) as built, running_provider(settings, built.mounter):
            with GrpcioProviderClient(settings.socket_path) as client:
                yield Running(client)


@pytest.mark.asyncio
async def test_seed_document_example_end_to_end(aws: ProxyState, moto_server: str, provider: Running) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    first = sm.create_secret(Name="MySecret", SecretString=json.dumps(SEED_DOC))
    second = sm.create_secret(Name="MySecret2", SecretString="whole value, any format")
    objects = seed_objects(first["ARN"], second["ARN"])
    reply = await provider.mount(pod_attributes(objects))
    files = {f.path: (f.mode, f.contents) for f in reply.files}  # type: ignore[attr-defined]
    assert files["dbusername"] == (0o644, b"john.doe")
    assert files["dbpassword"] == (0o644, b"123456")
    assert files["foobar"] == (0o644, b"whole value, any format")
    assert files[first["ARN"]] == (0o644, json.dumps(SEED_DOC).encode())
    versions = {v.id: v.version for v in reply.object_version}  # type: ignore[attr-defined]
    assert versions == {
        "dbusername": first["VersionId"],
        "dbpassword": first["VersionId"],
        "foobar": second["VersionId"],
        first["ARN"]: first["VersionId"],
    }
    # two secrets, one BatchGetSecretValue
    assert aws.operations() == {"BatchGetSecretValue": 1}


@pytest.mark.asyncio
async def test_invalid_request_is_invalid_argument_listing_every_problem(provider: Running) -> None:
    objects = '- objectName: a\n  objectType: bogus\n- objectName: b\n  filePermission: "999"\n'
    with pytest.raises(grpc.RpcError) as caught:
        await provider.mount(pod_attributes(objects))
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "objects[0]" in caught.value.details() and "objects[1]" in caught.value.details()


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("fault", "code"),
    [
        (Fault(status=500, code="InternalServiceError"), grpc.StatusCode.UNAVAILABLE),
        (Fault(status=503, code="ServiceUnavailable"), grpc.StatusCode.UNAVAILABLE),
        (Fault(status=400, code="ThrottlingException"), grpc.StatusCode.UNAVAILABLE),
        (Fault(reset=True), grpc.StatusCode.UNAVAILABLE),
        (Fault(status=400, code="AccessDeniedException"), grpc.StatusCode.PERMISSION_DENIED),
        (Fault(status=400, code="ResourceNotFoundException"), grpc.StatusCode.NOT_FOUND),
    ],
)
async def test_faults_map_to_status_and_the_next_mount_succeeds(
    aws: ProxyState, moto_server: str, provider: Running, fault: Fault, code: grpc.StatusCode
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="db", SecretString="v")
    objects = "- objectName: db\n  objectType: secretsmanager\n"
    aws.faults[(REGION, "*")] = fault
    with pytest.raises(grpc.RpcError) as caught:
        await provider.mount(pod_attributes(objects))
    assert caught.value.code() == code
    assert REGION in caught.value.details() and "db" in caught.value.details()
    # bounded retries: at most aws_max_attempts (2) requests, no storm
    assert len(aws.calls) <= 2
    aws.faults.clear()
    reply = await provider.mount(pod_attributes(objects))
    assert [f.contents for f in reply.files] == [b"v"]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_response_slower_than_the_deadline_is_deadline_exceeded(
    aws: ProxyState, moto_server: str, provider: Running
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="db", SecretString="v")
    objects = "- objectName: db\n  objectType: secretsmanager\n"
    aws.faults[(REGION, "*")] = Fault(delay=3.0, forward_after_delay=True)
    with pytest.raises(grpc.RpcError) as caught:
        await provider.mount(pod_attributes(objects), timeout=1.0)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    aws.faults.clear()
    reply = await provider.mount(pod_attributes(objects))
    assert [f.contents for f in reply.files] == [b"v"]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_primary_region_down_fails_over(aws: ProxyState, moto_server: str, provider: Running) -> None:
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(Name="db", SecretString="replica")
    objects = "- objectName: db\n  objectType: secretsmanager\n"
    aws.faults[(REGION, "*")] = Fault(reset=True)
    reply = await provider.mount(pod_attributes(objects, failoverRegion=FAILOVER))
    assert [f.contents for f in reply.files] == [b"replica"]  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_many_concurrent_mounts_over_one_socket(aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    for i in range(5):
        sm.create_secret(Name=f"s{i}", SecretString=f"value-{i}")
    objects = "".join(f"- objectName: s{i}\n  objectType: secretsmanager\n" for i in range(5))
    aws.delay = 0.01
    with short_socket_dir() as socket_dir:
        settings = Settings(socket_dir=Path(socket_dir), shutdown_grace=5.0, max_concurrency=8)
        async with build_provider(settings) as built, running_provider(settings, built.mounter):
            with GrpcioProviderClient(settings.socket_path) as client:

                def one() -> dict[str, bytes]:
                    reply = client.mount(attributes=pod_attributes(objects), secrets=STATIC, timeout=120)
                    return {f.path: f.contents for f in reply.files}

                loop = asyncio.get_running_loop()

                with ThreadPoolExecutor(max_workers=64) as pool:
                    replies = await asyncio.gather(*(loop.run_in_executor(pool, one) for _ in range(300)))
    expected = {f"s{i}": f"value-{i}".encode() for i in range(5)}
    assert all(reply == expected for reply in replies)
    # the process-wide limit on concurrent AWS requests held
    assert 1 <= aws.max_in_flight <= 8


@pytest.mark.asyncio
async def test_a_burst_of_throttling_does_not_become_a_retry_storm(aws: ProxyState) -> None:
    # 200 Mounts of different secrets at once, every AWS request throttled.
    mounts, attempts = 200, 3
    aws.faults[(REGION, "*")] = Fault(status=400, code="ThrottlingException", message="Rate exceeded")
    with short_socket_dir() as socket_dir:
        settings = Settings(socket_dir=Path(socket_dir), shutdown_grace=5.0, aws_max_attempts=attempts)
        async with build_provider(settings) as built, running_provider(settings, built.mounter):
            with GrpcioProviderClient(settings.socket_path) as client:

                def one(index: int) -> grpc.StatusCode:
                    objects = f"- objectName: throttled-{index}\n  objectType: secretsmanager\n"
                    try:
                        client.mount(attributes=pod_attributes(objects), secrets=STATIC, timeout=60)
                    except grpc.RpcError as error:
                        return error.code()  # type: ignore[no-any-return]
                    return grpc.StatusCode.OK

                loop = asyncio.get_running_loop()
                with ThreadPoolExecutor(max_workers=100) as pool:
                    codes = await asyncio.gather(*(loop.run_in_executor(pool, one, i) for i in range(mounts)))
    assert set(codes) == {grpc.StatusCode.UNAVAILABLE}
    # Every Mount tried once; retries come out of one shared, bounded retry budget (botocore's
    # standard mode: 500 units at 5 per retry), not `attempts` per Mount.
    assert mounts <= len(aws.calls) <= mounts + 100
    assert len(aws.calls) < mounts * attempts
    print(f"{mounts} throttled Mounts sent {len(aws.calls)} requests")
