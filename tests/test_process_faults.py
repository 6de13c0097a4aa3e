"""Process faults of a real `provider-aws serve` child: SIGTERM with Mounts in flight, SIGKILL and restart.

The child talks to moto through the counting proxy, which holds each AWS request for a while so that
the Mounts are provably inside the provider (counted at the proxy) when the signal arrives.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pytest

from provider_aws.cli.drivermount import MountOptions, mount_once
from provider_aws.rpc.messages import MountRequest
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import GrpcioProviderClient
from testkit.requests import STATIC, pod_attributes
from testkit.serveproc import ServeProcess, serve_process
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

REGION = "us-west-2"
IN_FLIGHT = 50
CALL_TIMEOUT = 30.0
WAIT = 20.0
# What a dying provider may answer instead of the files: a status the driver retries on.
CLEAN_FAILURES = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED}


def mount_request(secret: str) -> MountRequest:
    """The driver's MountRequest for one Secrets Manager object, with static credentials."""
    return MountRequest(
        attributes=pod_attributes(
            f"- objectName: {secret}\n  objectType: secretsmanager\n", pod="faults", region=REGION
        ),
        secrets=STATIC,
        target_path="/var/lib/kubelet/pods/5d3c1f0e-faults/volumes/kubernetes.io~csi/s/mount",
        permission="420",
    )


def seed(moto_server: str, count: int, prefix: str) -> dict[str, bytes]:
    client = seed_client(moto_server, "secretsmanager", REGION)
    values = {f"{prefix}-{i}": f"value of {prefix} {i}".encode() for i in range(count)}
    for name, value in values.items():
        client.create_secret(Name=name, SecretString=value.decode())
    return values


def mount_outcome(client: GrpcioProviderClient, secret: str) -> Any:
    """The reply, or the status code of a clean failure; anything else propagates and fails the test.

    grpcio's C core, like the driver's grpc-go, turns a connection closed under a call into a status.
    """
    request = mount_request(secret)
    try:
        return client.mount(
            attributes=request.attributes,
            secrets=request.secrets,
            target_path=request.target_path,
            timeout=CALL_TIMEOUT,
        )
    except grpc.RpcError as err:
        return err.code()


def assert_quiet_exit(child: ServeProcess, code: int | None) -> None:
    log = child.log()
    assert code == 0, log[-4000:]
    assert "Traceback" not in log
    assert not child.socket_path.exists()


@pytest.mark.asyncio
@pytest.mark.timeout(90)
@pytest.mark.parametrize("timing", [(15.0, 1.0), (0.5, 4.0)], ids=["drained", "cut-short"])
async def test_sigterm_with_fifty_mounts_in_flight(
    aws: ProxyState, moto_server: str, socket_dir: Path, tmp_path: Path, timing: tuple[float, float]
) -> None:
    """(grace, AWS delay): a grace period that covers the Mounts, and one that cuts them short."""
    grace, delay = timing
    values = seed(moto_server, IN_FLIGHT, "term")
    aws.delay = delay
    flags = ["--shutdown-grace", str(grace), "--coalesce-window", "0", "--log-level", "info"]
    async with serve_process(socket_dir, tmp_path / "serve.log", flags) as child:
        loop = asyncio.get_running_loop()
        with (
            GrpcioProviderClient(child.socket_path) as client,
            ThreadPoolExecutor(max_workers=IN_FLIGHT) as pool,
        ):
            calls = [loop.run_in_executor(pool, mount_outcome, client, name) for name in values]
            await aws.wait_until(lambda state: state.in_flight >= IN_FLIGHT, limit=WAIT)
            assert aws.count() == 0  # every Mount is inside the provider, none has its answer yet
            child.send(signal.SIGTERM)
            async with asyncio.timeout(CALL_TIMEOUT + 5):
                outcomes = await asyncio.gather(*calls)
            code = await child.exit_status(grace + WAIT)
    answered = failed = 0
    for name, outcome in zip(values, outcomes, strict=True):
        if isinstance(outcome, grpc.StatusCode):
            assert outcome in CLEAN_FAILURES, (name, outcome)
            failed += 1
        else:
            assert [(f.path, f.contents) for f in outcome.files] == [(name, values[name])]
            answered += 1
    print(f"grace {grace}s, AWS delay {delay}s: {answered} answered, {failed} failed cleanly")
    if grace > delay * 2:
        assert answered == IN_FLIGHT  # the grace period covers the slowest Mount
    else:
        assert failed == IN_FLIGHT  # cancelled after the grace period, none answered with partial data
    assert_quiet_exit(child, code)
    # let the proxy finish the requests the provider abandoned before the next test resets it
    await aws.wait_until(lambda state: state.in_flight == 0, limit=delay + WAIT)


@pytest.mark.asyncio
@pytest.mark.timeout(90)
async def test_sigkill_leaves_the_socket_and_a_restart_replaces_it(
    aws: ProxyState, moto_server: str, socket_dir: Path, tmp_path: Path
) -> None:
    values = seed(moto_server, 3, "kill")
    socket_path = socket_dir / "aws.sock"
    async with serve_process(socket_dir, tmp_path / "first.log") as first:
        first.send(signal.SIGKILL)
        assert await first.exit_status(WAIT) == -signal.SIGKILL
    assert stat.S_ISSOCK(socket_path.lstat().st_mode)  # left behind, nobody listening
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe, pytest.raises(ConnectionRefusedError):
        probe.connect(str(socket_path))
    socket_path.chmod(0o666)  # marks the dead socket: a new one is created 0600

    async with serve_process(socket_dir, tmp_path / "second.log") as second:
        assert stat.S_IMODE(socket_path.lstat().st_mode) == 0o600
        spc = tmp_path / "spc.yaml"
        spc.write_text(spc_manifest(list(values)), encoding="utf-8")
        options = MountOptions(
            target=tmp_path / "mount",
            namespace="default",
            pod="restarted",
            service_account="default",
            secrets={"awsAccessKeyId": TEST_ACCESS_KEY, "awsSecretAccessKey": TEST_SECRET_KEY},
        )
        async with asyncio.timeout(WAIT):
            await mount_once(spc, options, socket_path)
        second.send(signal.SIGTERM)
        code = await second.exit_status(WAIT)
    for name, value in values.items():
        assert (tmp_path / "mount" / name).read_bytes() == value
    assert "removing stale socket" in second.log()
    assert_quiet_exit(second, code)


def spc_manifest(names: list[str]) -> str:
    objects = "".join(f"      - objectName: {name}\n        objectType: secretsmanager\n" for name in names)
    return (
        "apiVersion: secrets-store.csi.x-k8s.io/v1\n"
        "kind: SecretProviderClass\n"
        "metadata:\n  name: restarted\n"
        "spec:\n  provider: aws\n  parameters:\n"
        f"    region: {REGION}\n"
        "    objects: |\n"
        f"{objects}"
    )
