"""IRSA end to end: Mounts over the socket, the ServiceAccount from a local Kubernetes API, STS and
Secrets Manager from moto. Counts Kubernetes and STS calls per Mount burst."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from provider_aws.app import build_provider
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.identity import ROLE, jwt, served_cluster
from testkit.requests import REGION, pod_attributes
from tests.conftest import seed_client

NODE = "node-1"


@pytest.mark.asyncio
async def test_100_mounts_over_10_service_accounts(
    aws: ProxyState, moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="shared", SecretString="s3cr3t")
    objects = "- objectName: shared\n  objectType: secretsmanager\n"
    with served_cluster(tmp_path, monkeypatch) as cluster, short_socket_dir() as socket_dir:
        cluster.state.nodes[NODE] = {"topology.kubernetes.io/region": REGION}
        for i in range(10):
            cluster.state.service_accounts[("shop", f"sa-{i}")] = {ROLE_ARN_ANNOTATION: ROLE}
        settings = Settings(socket_dir=Path(socket_dir), shutdown_grace=5.0, node_name=NODE)
        async with build_provider(settings) as built, running_provider(settings, built.mounter):
            with GrpcioProviderClient(settings.socket_path) as client, ThreadPoolExecutor(32) as pool:

                def mount(i: int) -> bytes:
                    attrs = pod_attributes(
                        objects,
                        service_account=f"sa-{i % 10}",
                        pod=f"pod-{i}",
                        region=None,
                        sts_token=jwt("shop", f"sa-{i % 10}", f"pod-{i}"),
                    )
                    reply = client.mount(attributes=attrs, timeout=60)
                    return bytes(reply.files[0].contents)

                loop = asyncio.get_running_loop()
                contents = await asyncio.gather(*(loop.run_in_executor(pool, mount, i) for i in range(100)))

                # a ServiceAccount without the annotation: FAILED_PRECONDITION naming it
                cluster.state.service_accounts[("shop", "bare")] = {}
                with pytest.raises(grpc.RpcError) as caught:
                    await asyncio.to_thread(
                        client.mount,
                        attributes=pod_attributes(
                            objects,
                            service_account="bare",
                            pod="p",
                            region=None,
                            sts_token=jwt("shop", "bare", "p"),
                        ),
                        timeout=30,
                    )
    assert contents == [b"s3cr3t"] * 100
    assert cluster.state.count("serviceaccounts") == 11
    assert cluster.state.count("nodes") == 1
    assert cluster.state.count("pods") == 0
    assert aws.count(operation="AssumeRoleWithWebIdentity") == 10
    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "bare" in caught.value.details() and "shop" in caught.value.details()
