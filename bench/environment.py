"""The bench's world: moto behind the delaying proxy, an HTTPS fake kube-apiserver, the provider process and
the real Go provider (`make goprovider`) beside it, both spoken to through the same proxy and API."""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]

from bench.cgroup import cpu_quota
from provider_aws.attributes import ROLE_ARN_ANNOTATION
from provider_aws.identity.regions import REGION_LABEL
from testkit.awsproxy import AwsProxy
from testkit.goprovider import GoProvider, go_env, go_provider
from testkit.identity import IRSA, jwt
from testkit.kubeapi import FakeKubeApi
from testkit.motoproc import STARTUP_TIMEOUT, free_port, moto_process, stop
from testkit.requests import pod_attributes
from testkit.tls import loopback_certificate

__all__ = [
    "REGION",
    "ROLE",
    "Environment",
    "ProcessGauges",
    "moto_process",
    "mount_attributes",
    "profiled",
    "started",
]

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/bench-reader"
NODE = "bench-node"
HIDDEN_PACKAGES = ("rich",)
SEED_KEY_ID = "AKIDBENCHSEEDONLY"
SEED_SECRET = "bench-seed-secret-key"


class ProcessGauges(ABC):
    """CPU time and memory of the provider process `pid`, from /proc."""

    @property
    @abstractmethod
    def pid(self) -> int: ...

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.pid)

    def rss_mib(self) -> float:
        return status_mib(self.pid, "VmRSS")

    def peak_rss_mib(self) -> float:
        """The most resident memory the provider has had so far (the kernel's high-water mark)."""
        return status_mib(self.pid, "VmHWM")


@dataclass
class Environment(ProcessGauges):
    moto_url: str
    proxy: AwsProxy
    kube: FakeKubeApi
    process: subprocess.Popen[bytes]
    socket_path: Path
    # The provider's CPU seconds when its socket appeared: the cost of becoming ready.
    ready_cpu_seconds: float = 0.0
    # What the CPU quota was, or why there is none (`--cpu-limit`).
    cpu_limit: str = "none"
    # The real Go provider on its own socket (None: `--no-go`).
    go: GoProvider | None = None

    @property
    def pid(self) -> int:
        return self.process.pid

    def set_delay(self, seconds: float) -> None:
        self.proxy.state.delay = seconds
        with self.kube.state.lock:
            self.kube.state.delay = seconds

    def add_service_account(self, namespace: str, name: str) -> None:
        with self.kube.state.lock:
            self.kube.state.service_accounts[(namespace, name)] = {ROLE_ARN_ANNOTATION: ROLE}

    def seed(self, service: str) -> Any:
        """A boto3 client straight to moto (not through the proxy), for creating test data."""
        return boto3.client(
            service,
            region_name=REGION,
            endpoint_url=self.moto_url,
            aws_access_key_id=SEED_KEY_ID,
            aws_secret_access_key=SEED_SECRET,
        )


def cpu_seconds(pid: int) -> float:
    """Process `pid`'s user + system CPU time so far, from /proc/PID/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of the line)
    return ticks / os.sysconf("SC_CLK_TCK")


def status_mib(pid: int, field: str) -> float:
    """A memory figure of /proc/PID/status (VmRSS, VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no {field} in /proc status")


def mount_attributes(namespace: str, pod: str, service_account: str, objects: str) -> str:
    """MountRequest.attributes as the driver sends them, with kubelet's service account token."""
    token = jwt(namespace, service_account, pod, IRSA)
    return pod_attributes(
        objects, pod=pod, namespace=namespace, service_account=service_account, region=REGION, sts_token=token
    )


def _wait_for_socket(process: subprocess.Popen[bytes], socket_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while not socket_path.exists():
        if process.poll() is not None:
            raise RuntimeError(f"provider-aws serve exited with status {process.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError("provider-aws serve did not create its socket in time")
        time.sleep(0.05)


@contextmanager
def started(
    cpu_limit_millicores: int | None = None, source: Path | None = None, *, go: bool = True
) -> Iterator[Environment]:
    """moto, the proxy (no delay yet), the fake cluster, `provider-aws serve` and (with `go`) the Go
    provider, all on loopback; with `cpu_limit_millicores`, our provider runs under that CPU quota
    (cgroup v2); with `source`, its provider_aws package comes from that tree (an earlier commit)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with moto_process() as (host, port), _provider_world(host, port, cpu_limit_millicores, source, go) as env:
        yield env


def _hide_dev_packages(directory: Path) -> str:
    """A PYTHONPATH entry under which the dev tools' packages cannot be imported.

    The image installs the provider's dependencies only; this virtualenv also has rich (for
    import-linter), which structlog imports whenever it is present (3 MiB). Hidden, the provider
    process imports what it imports in the image.
    """
    for package in HIDDEN_PACKAGES:
        (directory / package).mkdir(parents=True)
        (directory / package / "__init__.py").write_text(
            f"raise ImportError('{package} is not in the image; the bench hides it')\n"
        )
    return str(directory)


@contextmanager
def _provider_world(
    host: str, port: int, cpu_limit_millicores: int | None, source: Path | None, go: bool
) -> Iterator[Environment]:
    moto_url = f"http://{host}:{port}"
    process: subprocess.Popen[bytes] | None = None
    with tempfile.TemporaryDirectory(prefix="pab-", dir="/tmp") as scratch, contextlib.ExitStack() as stack:
        directory = Path(scratch)
        proxy = AwsProxy((host, int(port)))
        # HTTPS: the Go provider's client-go sends its bearer token over HTTPS only.
        kube = FakeKubeApi(loopback_certificate(directory))
        proxy.start()
        kube.start()
        kube.state.nodes[NODE] = {REGION_LABEL: REGION}
        kubeconfig = kube.write_kubeconfig(directory / "kubeconfig")
        socket_dir = directory / "s"
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": scratch,
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_CONFIG_FILE": "/dev/null",
            "AWS_SHARED_CREDENTIALS_FILE": "/dev/null",
            "AWS_EC2_METADATA_DISABLED": "true",
            "KUBECONFIG": str(kubeconfig),
            "NODE_NAME": NODE,
            "PYTHONPATH": os.pathsep.join(
                [_hide_dev_packages(directory / "hidden"), *([str(source)] if source else [])]
            ),
        }
        command = [
            str(Path(sys.executable).with_name("provider-aws")),
            "serve",
            "--socket-dir",
            str(socket_dir),
            # /healthz and /metrics as in the DaemonSet: their code is part of the footprint.
            "--http-addr",
            f"127.0.0.1:{free_port()}",
            "--log-level",
            "warning",
        ]
        try:
            with cpu_quota(cpu_limit_millicores) as quota:
                # The quota applies from the first instruction: the child enters the cgroup, then starts.
                process = subprocess.Popen(quota.command(command), env=env, stdout=subprocess.DEVNULL)
                _wait_for_socket(process, socket_dir / "aws.sock")
                world = Environment(moto_url, proxy, kube, process, socket_dir / "aws.sock")
                world.ready_cpu_seconds = world.cpu_seconds()
                world.cpu_limit = quota.description
                if go:
                    world.go = stack.enter_context(
                        go_provider(directory / "go", directory / "go.log", go_env(proxy.url, kubeconfig))
                    )
                yield world
        finally:
            if process is not None:
                stop(process)
            kube.stop()
            proxy.stop()


@contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """py-spy samples process `pid` for as long as the block runs (nothing when `output` is None)."""
    if output is None:
        yield
        return
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        raise RuntimeError("--profile needs py-spy in the virtualenv: .venv/bin/pip install py-spy")
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [str(spy), "record", "--pid", str(pid), "--format", "raw", "--rate", "250", "-o", str(output)]
    recorder = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    time.sleep(0.5)  # lets py-spy attach before the measured Mounts start
    try:
        yield
    finally:
        stop(recorder, signal.SIGINT)  # SIGINT: py-spy writes its samples before it exits
