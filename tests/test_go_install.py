"""This image dropped into the Go provider's own install paths: `provider-aws serve` started with the
args its Helm chart, its installer manifest and the EKS add-on render, under their environment (no
NODE_NAME; AWS_REGION and AWS_USE_FIPS_ENDPOINT from the chart's values), then Version and Mount over
the socket as the driver calls them.

The args are the rendered ones with one change: the socket directory is a temporary one instead of
/var/run/secrets-store-csi-providers. Moto is reached through the counting proxy (AWS_ENDPOINT_URL);
the FIPS test instead lets botocore pick its endpoints and sends them to a loopback HTTPS proxy that
records each CONNECT's host and refuses it, so nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import pytest

from provider_aws import DISTRIBUTION, __version__
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.identity.regions import REGION_LABEL
from testkit.awsproxy import ProxyState
from testkit.connectproxy import ConnectRecorder
from testkit.grpc_clients import GrpcioProviderClient
from testkit.identity import POD_IDENTITY, ROLE, jwt, served_cluster
from testkit.kubeapi import FakeKubeApi
from testkit.podagent import FakePodIdentityAgent
from testkit.requests import REGION, STATIC, pod_attributes
from testkit.serveproc import ServeProcess, serve_env, serve_process
from tests.conftest import seed_client

CALL_TIMEOUT = 20.0
ADDON_VERSION = "v2.2.0-eksbuild.1"
SECRET = "go-install/db"
VALUE = "password-from-the-go-install-path"
OBJECTS = f"- objectName: {SECRET}\n  objectType: secretsmanager\n"


@dataclass(frozen=True)
class GoInstall:
    """The args a Go install path renders ({dir}: the socket directory) and the env it sets."""

    args: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    # What the provider must say once at start-up about flags that change nothing here.
    notes: tuple[str, ...] = ()
    eks_addon_version: str = ""
    # Mount with IRSA (STS, then Secrets Manager) instead of static credentials.
    irsa: bool = False


INSTALLS = {
    # The Go chart with its default values renders the same one arg as the installer manifest
    # (deployment/aws-provider-installer.yaml): `--provider-volume=/var/run/secrets-store-csi-providers`.
    "go chart defaults and installer manifest": GoInstall(("--provider-volume={dir}",)),
    # Every optional value set: driverWritesSecrets, k8sThrottlingParams, podIdentityHttpTimeout,
    # awsRegion (as AWS_REGION). useFipsEndpoint is the FIPS test's: botocore refuses FIPS together
    # with a custom endpoint such as moto's.
    "go chart, every optional value": GoInstall(
        (
            "--provider-volume={dir}",
            "--driver-writes-secrets=true",
            "--qps=20",
            "--burst=40",
            "--pod-identity-http-timeout=250ms",
        ),
        env=(("AWS_REGION", REGION),),
        notes=(
            "--driver-writes-secrets accepted and ignored",
            "--qps accepted and ignored",
            "--burst accepted and ignored",
        ),
    ),
    # The add-on's flags, in the `--flag value` form; IRSA, so that STS's user agent is seen too.
    "eks add-on": GoInstall(
        (
            "--provider-volume",
            "{dir}",
            "--eks-addon-version",
            ADDON_VERSION,
            "--pod-identity-http-timeout",
            "2s",
        ),
        eks_addon_version=ADDON_VERSION,
        irsa=True,
    ),
}


@pytest.fixture
def cluster(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeKubeApi]:
    """The fake API server, with the Mount's pod on a node labelled with the region."""
    with served_cluster(tmp_path, monkeypatch) as server:
        server.state.pods[("shop", "web-0")] = "node-7"
        server.state.nodes["node-7"] = {REGION_LABEL: REGION}
        yield server


def child_env(extra: tuple[tuple[str, str], ...], **more: str) -> dict[str, str]:
    """What the Go chart's pod has: KUBECONFIG standing in for in-cluster config, no NODE_NAME."""
    env = serve_env()
    env.pop("NODE_NAME", None)
    if "KUBECONFIG" in os.environ:  # the fake API server of the `cluster` fixture
        env["KUBECONFIG"] = os.environ["KUBECONFIG"]
    env.update(extra, **more)
    return env


@pytest.fixture
def seeded(aws: ProxyState, moto_server: str) -> ProxyState:
    """moto, through the counting proxy, holding the secret the Mounts ask for."""
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name=SECRET, SecretString=VALUE)
    return aws


async def call(function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """A blocking grpcio call, off the loop."""
    return await asyncio.to_thread(function, *args, **kwargs)


def startup_lines(child: ServeProcess, text: str) -> list[dict[str, Any]]:
    lines = [json.loads(line) for line in child.log().splitlines() if line.startswith("{")]
    return [line for line in lines if line["event"].startswith(text)]


@pytest.mark.asyncio
@pytest.mark.timeout(120)
@pytest.mark.parametrize("name", INSTALLS)
async def test_the_go_install_args_start_the_provider_and_a_mount_works(
    seeded: ProxyState, cluster: FakeKubeApi, socket_dir: Path, tmp_path: Path, name: str
) -> None:
    install = INSTALLS[name]
    cluster.state.service_accounts[("shop", "web")] = {ROLE_ARN_ANNOTATION: ROLE}
    token = jwt("shop", "web", "web-0") if install.irsa else None
    args = [arg.format(dir=socket_dir) for arg in install.args]
    env = child_env(install.env)
    async with serve_process(socket_dir, tmp_path / "serve.log", args, env, exact=True) as child:
        with GrpcioProviderClient(child.socket_path) as client:
            version = await call(client.version, timeout=CALL_TIMEOUT)
            # No region in the SecretProviderClass: AWS_REGION when the chart sets it, else the pod's node.
            attributes = pod_attributes(OBJECTS, region=None, sts_token=token)
            secrets = "null" if install.irsa else STATIC
            reply = await call(client.mount, attributes=attributes, secrets=secrets, timeout=CALL_TIMEOUT)
        for note in install.notes:
            assert len(startup_lines(child, note)) == 1, f"{note!r} not logged once:\n{child.log()[-3000:]}"
        if not install.notes:
            assert startup_lines(child, "--") == []
    assert (version.version, version.runtime_version) == ("v1alpha1", __version__)
    assert [(f.path, f.contents) for f in reply.files] == [(SECRET.replace("/", "_"), VALUE.encode())]
    # Without NODE_NAME or AWS_REGION the region is the pod's node's: one pod GET, one node GET.
    expected_gets = {} if dict(install.env).get("AWS_REGION") else {"pods": 1, "nodes": 1}
    if install.irsa:
        expected_gets["serviceaccounts"] = 1
    assert dict(cluster.state.gets) == expected_gets
    operations = ["AssumeRoleWithWebIdentity", "GetSecretValue"] if install.irsa else ["GetSecretValue"]
    assert [request.operation for request in seeded.calls] == operations
    for request in seeded.calls:
        # The provider named once, first; the add-on's version at the end, as the Go provider has it.
        assert request.user_agent.startswith(f"{DISTRIBUTION}/{__version__} "), request.user_agent
        assert request.user_agent.count(DISTRIBUTION) == 1, request.user_agent
        if install.eks_addon_version:
            assert request.user_agent.endswith(f" eksAddonVersion/{install.eks_addon_version}")


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_qps_and_burst_put_no_limit_on_kubernetes_gets(
    seeded: ProxyState, cluster: FakeKubeApi, socket_dir: Path, tmp_path: Path
) -> None:
    """--qps=1 --burst=1 would let the Go provider send one GET at a time; here they overlap.

    Eight pods on eight nodes mount at once with neither NODE_NAME nor AWS_REGION, so each Mount needs
    its pod and its node; each GET is held 0.3 s at the API so that overlapping ones are seen.
    """
    pods = [f"web-{i}" for i in range(8)]
    for i, pod in enumerate(pods):
        cluster.state.pods[("shop", pod)] = f"node-{i}"
        cluster.state.nodes[f"node-{i}"] = {REGION_LABEL: REGION}
    cluster.state.delay = 0.3
    args = [f"--provider-volume={socket_dir}", "--qps=1", "--burst=1"]
    async with serve_process(socket_dir, tmp_path / "serve.log", args, child_env(()), exact=True) as child:
        with GrpcioProviderClient(child.socket_path) as client, ThreadPoolExecutor(len(pods)) as pool:

            def mount(pod: str) -> Any:
                attributes = pod_attributes(OBJECTS, pod=pod, region=None)
                return client.mount(attributes=attributes, secrets=STATIC, timeout=CALL_TIMEOUT)

            loop = asyncio.get_running_loop()
            async with asyncio.timeout(CALL_TIMEOUT + 5):
                replies = await asyncio.gather(*(loop.run_in_executor(pool, mount, pod) for pod in pods))
    assert all(len(reply.files) == 1 for reply in replies)
    assert dict(cluster.state.gets) == {"pods": 8, "nodes": 8}
    assert cluster.state.max_in_flight >= 3, "the Kubernetes GETs were serialised"


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_pod_identity_http_timeout_bounds_the_wait_for_the_agent(
    seeded: ProxyState, socket_dir: Path, tmp_path: Path
) -> None:
    """The Go chart's podIdentityHttpTimeout: an agent that takes 1 s is given up on at 250ms (the Mount
    fails as the driver retries it) and, without the flag, waited for (5 s by default) and used."""
    token = jwt("shop", "web", "web-0", POD_IDENTITY)
    agent = FakePodIdentityAgent().start()
    agent.state.accept(token, "AKIDPODIDENTITYTEST")
    agent.state.delay = 1.0
    attributes = pod_attributes(
        OBJECTS, pod_identity_token=token, usePodIdentity="true", preferredAddressType="ipv4"
    )
    outcomes: list[Any] = []
    try:
        for flags in (["--pod-identity-http-timeout=250ms"], []):
            args = [f"--provider-volume={socket_dir}", *flags, f"--pod-identity-endpoint-ipv4={agent.url}"]
            log = tmp_path / f"serve-{len(outcomes)}.log"
            async with serve_process(socket_dir, log, args, child_env(()), exact=True) as child:
                with GrpcioProviderClient(child.socket_path) as client:
                    try:
                        outcomes.append(await call(client.mount, attributes=attributes, timeout=CALL_TIMEOUT))
                    except grpc.RpcError as error:
                        outcomes.append(error)
    finally:
        agent.stop()
    failed, served = outcomes
    assert isinstance(failed, grpc.RpcError) and failed.code() == grpc.StatusCode.UNAVAILABLE
    assert "Pod Identity agent did not answer" in failed.details()
    assert [(f.path, f.contents) for f in served.files] == [(SECRET.replace("/", "_"), VALUE.encode())]
    assert agent.state.requests == 2  # one per Mount
    assert [request.operation for request in seeded.calls] == ["GetSecretValue"]


@pytest.mark.asyncio
@pytest.mark.timeout(120)
async def test_fips_endpoints_for_secrets_manager_ssm_and_sts(
    cluster: FakeKubeApi, socket_dir: Path, tmp_path: Path
) -> None:
    """The Go chart with useFipsEndpoint and awsRegion: each service's request goes to its FIPS host."""
    cluster.state.service_accounts[("shop", "web")] = {ROLE_ARN_ANNOTATION: ROLE}
    region = "us-east-1"
    recorder = ConnectRecorder().start()
    try:
        env = child_env(
            (("AWS_REGION", region), ("AWS_USE_FIPS_ENDPOINT", "true")),
            HTTPS_PROXY=recorder.url,
            https_proxy=recorder.url,
        )
        for name in ("AWS_ENDPOINT_URL", "NO_PROXY", "no_proxy"):
            env.pop(name, None)
        # One attempt per request: each refused CONNECT is then counted once.
        args = [f"--provider-volume={socket_dir}", "--aws-max-attempts=1"]
        mounts = {
            f"secretsmanager-fips.{region}.amazonaws.com:443": (OBJECTS, STATIC),
            f"ssm-fips.{region}.amazonaws.com:443": (
                "- objectName: /app/db\n  objectType: ssmparameter\n",
                STATIC,
            ),
            # IRSA: the pod's token is exchanged at STS first.
            f"sts-fips.{region}.amazonaws.com:443": (OBJECTS, "null"),
        }
        async with serve_process(socket_dir, tmp_path / "serve.log", args, env, exact=True) as child:
            with GrpcioProviderClient(child.socket_path) as client:
                for host, (objects, secrets) in mounts.items():
                    attributes = pod_attributes(objects, region=None, sts_token=jwt("shop", "web", "web-0"))
                    with pytest.raises(grpc.RpcError) as failed:
                        await call(client.mount, attributes=attributes, secrets=secrets, timeout=CALL_TIMEOUT)
                    assert failed.value.code() == grpc.StatusCode.UNAVAILABLE, failed.value.details()
                    await recorder.log.wait_for(host, limit=CALL_TIMEOUT)
        assert recorder.log.seen() == set(mounts)
        assert cluster.state.gets["nodes"] == 0  # AWS_REGION, as the chart's awsRegion sets it
    finally:
        recorder.stop()
