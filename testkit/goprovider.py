"""The real Go provider (aws/secrets-store-csi-driver-provider-aws 3.1.1, `make goprovider`), a child process.

It runs as its DaemonSet runs it (`--driver-writes-secrets=true`, the driver writes the files), pointed at
loopback through the oracle's three seams: `KUBECONFIG` (an HTTPS API: client-go sends no bearer token over
plain http), `AWS_ENDPOINT_URL` (also its STS endpoint) and the Pod Identity agent's two addresses.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from testkit.grpc_clients import wait_answers_version
from testkit.makebin import BIN, made
from testkit.motoproc import stop

__all__ = ["GO_BINARY", "GoProvider", "go_command", "go_env", "go_provider", "goprovider_binary"]

GO_BINARY = BIN / "provider-aws-go"
READY_TIMEOUT = 30.0
# Dummy keys: its SDK's default chain must find something for the STS client (moto checks nothing).
DUMMY_KEY_ID = "AKIDGOPROVIDERDUMMY"
DUMMY_SECRET = "go-provider-dummy-secret"


def goprovider_binary() -> Path:
    """build/bin/provider-aws-go, built (or found up to date) by `make goprovider`."""
    return made("goprovider", GO_BINARY.name)


def go_command(socket_dir: Path, binary: Path = GO_BINARY) -> list[str]:
    """The Go provider's command line as its DaemonSet runs it, serving aws.sock in `socket_dir`."""
    return [str(binary), f"--provider-volume={socket_dir}", "--driver-writes-secrets=true"]


def go_env(
    aws_endpoint: str,
    kubeconfig: Path,
    *,
    pod_identity_ipv4: str | None = None,
    pod_identity_ipv6: str | None = None,
) -> dict[str, str]:
    """A clean environment: nothing from this one that could reach a real AWS or Kubernetes."""
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": str(kubeconfig.parent),
        "KUBECONFIG": str(kubeconfig),
        "AWS_ENDPOINT_URL": aws_endpoint,
        "AWS_ACCESS_KEY_ID": DUMMY_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": DUMMY_SECRET,
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    if pod_identity_ipv4 is not None:
        env["TEST_POD_IDENTITY_ENDPOINT_IPV4"] = pod_identity_ipv4
    if pod_identity_ipv6 is not None:
        env["TEST_POD_IDENTITY_ENDPOINT_IPV6"] = pod_identity_ipv6
    return env


@dataclass(frozen=True)
class GoProvider:
    process: subprocess.Popen[bytes]
    socket_dir: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def go_provider(
    socket_dir: Path, log: Path, env: Mapping[str, str], flags: Sequence[str] = ()
) -> Iterator[GoProvider]:
    """`provider-aws-go --provider-volume=DIR --driver-writes-secrets=true FLAGS...`, ready (Version
    answers) on entry, stopped by pid on the way out."""
    socket_dir.mkdir(parents=True, exist_ok=True)  # it listens there but does not create it
    command = [*go_command(socket_dir, goprovider_binary()), *flags]
    with log.open("ab") as stream:
        process = subprocess.Popen(command, env=dict(env), stdout=stream, stderr=subprocess.STDOUT)
    try:
        wait_answers_version(process, socket_dir / "aws.sock", log, "provider-aws-go", READY_TIMEOUT)
        yield GoProvider(process, socket_dir, log)
    finally:
        stop(process)
