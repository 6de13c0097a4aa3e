"""The AWS provider, ours or the Go one, started where the driver's node plugin finds it.

Each runs as the DaemonSet runs it beside the driver: on `aws.sock` in the driver's provider directory, in
the driver's mount namespace (so the Go provider can read a volume's current files back, as it does for an
unchanged version), talking to the API server through a kubeconfig and to AWS through the counting proxy.
Both are ready once Version answers on the socket (grpcio); both are stopped by pid.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.csidriver import DriverProcess
from testkit.goprovider import go_command
from testkit.grpc_clients import wait_answers_version
from testkit.motoproc import stop
from testkit.requests import TEST_ACCESS_KEY, TEST_SECRET_KEY
from testkit.serveproc import serve_env

__all__ = ["PROVIDERS", "NodeProvider", "node_provider"]

PROVIDERS = ("python", "go")
READY_TIMEOUT = 30.0


@dataclass(frozen=True)
class NodeProvider:
    kind: str
    process: subprocess.Popen[bytes]
    socket_path: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


def _command(kind: str, go_binary: Path, socket_dir: Path, agent_url: str) -> list[str]:
    if kind == "python":
        return [
            sys.executable,
            "-m",
            "provider_aws",
            "serve",
            f"--provider-volume={socket_dir}",
            f"--pod-identity-endpoint-ipv4={agent_url}",
            "--log-level=debug",
        ]
    return go_command(socket_dir, go_binary)


def _env(kind: str, node: str, kubeconfig: Path, aws_endpoint: str, agent_url: str) -> dict[str, str]:
    env = {**serve_env(), "KUBECONFIG": str(kubeconfig), "AWS_ENDPOINT_URL": aws_endpoint}
    if kind == "python":
        env["NODE_NAME"] = node  # as the DaemonSet sets it (the Go provider finds the node through the pod)
    else:
        # The oracle's seams (shared/oracles/go-provider/README.md): the agent's address, and dummy
        # credentials that no request of an identity-bearing Mount uses.
        env.update(
            TEST_POD_IDENTITY_ENDPOINT_IPV4=agent_url,
            AWS_ACCESS_KEY_ID=TEST_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=TEST_SECRET_KEY,
        )
    return env


@contextmanager
def node_provider(
    kind: str,
    driver: DriverProcess,
    *,
    node: str,
    go_binary: Path,
    kubeconfig: Path,
    aws_endpoint: str,
    agent_url: str,
    log_path: Path,
    extra_flags: Sequence[str] = (),
) -> Iterator[NodeProvider]:
    """`kind` ("python" or "go") serving aws.sock in the driver's provider directory."""
    command = [*driver.nsenter(), *_command(kind, go_binary, driver.provider_dir, agent_url), *extra_flags]
    socket_path = driver.provider_dir / "aws.sock"
    socket_path.unlink(missing_ok=True)
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            command,
            env=_env(kind, node, kubeconfig, aws_endpoint, agent_url),
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=os.getcwd(),
        )
    provider = NodeProvider(kind, process, socket_path, log_path)
    try:
        wait_answers_version(process, socket_path, log_path, f"{kind} provider", READY_TIMEOUT)
        yield provider
    finally:
        stop(process)
        socket_path.unlink(missing_ok=True)
