"""The world of `make compat`: moto in its own process behind the counting proxy, an HTTPS fake Kubernetes
API, fake Pod Identity agents on 127.0.0.1 and [::1], `provider-aws serve` and the real Go provider, each on
its own socket, and the driver's client program. `make test` does not collect this directory (pyproject's
norecursedirs): only a run that names it (`pytest tests/compat`, `make compat`) does.
"""

from __future__ import annotations

import contextlib
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from testkit.awsproxy import AwsProxy
from testkit.driverclient import driverclient_binary, shared_serve
from testkit.goprovider import GoProvider, go_env, go_provider
from testkit.kubeapi import FakeKubeApi
from testkit.motoproc import moto_process
from testkit.podagent import FakePodIdentityAgent
from testkit.requests import TEST_ACCESS_KEY, TEST_SECRET_KEY
from testkit.tls import loopback_certificate
from tests.compat.record import Record
from tests.compat.rig import Rig

# Ours as the Go provider is compared: every rotation check its own (the driver polls every two minutes,
# longer than the 5 s window in which pods of one identity share a check; the steps here follow each
# other within milliseconds).
OUR_FLAGS = ("--coalesce-window", "0", "--log-level", "debug")


def _seeder(moto: str) -> Callable[[str, str], Any]:
    """boto3 clients straight to moto (not through the proxy), for seeding."""

    def seed(service: str, region: str) -> Any:
        return boto3.client(
            service,
            region_name=region,
            endpoint_url=moto,
            aws_access_key_id=TEST_ACCESS_KEY,
            aws_secret_access_key=TEST_SECRET_KEY,
        )

    return seed


class GoSupervisor:
    """The Go provider, started again when it died (the rig records the crash)."""

    def __init__(self, socket_dir: Path, log: Path, env: dict[str, str]) -> None:
        self._args = (socket_dir, log, env)
        self._stack = contextlib.ExitStack()
        self._process: GoProvider | None = None
        self.restarts = 0

    def start(self) -> None:
        self._process = self._stack.enter_context(go_provider(*self._args))

    def alive(self, wait: float = 0.0) -> bool:
        """Whether it still runs (given up to `wait` seconds to exit, after a failed Mount)."""
        if self._process is None:
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self._process.process.wait(timeout=wait)
        return self._process.process.poll() is None

    def restart(self) -> None:
        self._stack.close()
        self._stack = contextlib.ExitStack()
        self.restarts += 1
        self.start()

    def stop(self) -> None:
        self._stack.close()


@pytest.fixture(scope="session")
def record() -> Record:
    return Record()


@pytest.fixture(scope="session")
def rig() -> Iterator[Rig]:
    binary = driverclient_binary()
    with (
        tempfile.TemporaryDirectory(prefix="pac-", dir="/tmp") as scratch,
        moto_process() as (host, port),
    ):
        work = Path(scratch)
        moto = f"http://{host}:{port}"
        proxy = AwsProxy((host, port)).start()
        kube = FakeKubeApi(loopback_certificate(work)).start()
        agents = {
            "ipv4": FakePodIdentityAgent("127.0.0.1").start(),
            "ipv6": FakePodIdentityAgent("::1").start(),
        }
        kubeconfig = kube.write_kubeconfig(work / "kubeconfig")
        ours_flags = (
            *OUR_FLAGS,
            "--pod-identity-endpoint-ipv4",
            agents["ipv4"].url,
            "--pod-identity-endpoint-ipv6",
            agents["ipv6"].url,
        )
        goenv = go_env(
            proxy.url, kubeconfig, pod_identity_ipv4=agents["ipv4"].url, pod_identity_ipv6=agents["ipv6"].url
        )
        go = GoSupervisor(work / "go", work / "go.log", goenv)
        try:
            with shared_serve(proxy.url, ours_flags, {"KUBECONFIG": str(kubeconfig)}) as ours:
                go.start()
                sockets = {"ours": ours.socket_dir, "go": work / "go"}
                seed = _seeder(moto)
                yield Rig(
                    moto, proxy, kube, binary, sockets, work / "cases", seed, agents, go.alive, go.restart
                )
        finally:
            go.stop()
            for agent in agents.values():
                agent.stop()
            kube.stop()
            proxy.stop()
