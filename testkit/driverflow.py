"""The seed's flow through the real driver: a driver node plugin per provider, one case at a time.

Two stacks run side by side against the same API server and the same moto (behind the counting proxy):
the driver with our provider on node-python, the driver with the Go provider on node-go. A case creates
its namespace, ServiceAccount, SecretProviderClass and Pod once per stack and publishes the pod's volume
through each driver, so every test both checks our tree and compares it with the Go provider's.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testkit.awsproxy import AwsProxy, ProxyState
from testkit.cluster import Cluster
from testkit.csidriver import (
    CsiResult,
    DriverProcess,
    Kubelet,
    PodVolume,
    VolumeTree,
    driver_process,
    read_tree,
)
from testkit.goprovider import GO_BINARY
from testkit.identity import ROLE
from testkit.kubeobjects import POD_IDENTITY_AUDIENCE, FlowObjects
from testkit.leakscan import LeakScan
from testkit.makebin import BIN
from testkit.nodeproviders import PROVIDERS, NodeProvider, node_provider
from testkit.podagent import FakePodIdentityAgent
from testkit.requests import REGION

__all__ = [
    "BIN",
    "ROTATION_POLL",
    "SPC",
    "Flow",
    "Published",
    "Stack",
    "driver_deploy_dir",
    "scanned_logs",
    "stacks",
    "start_flow",
]

ROOT = Path(__file__).resolve().parents[1]
SPC = "aws-secrets"
SERVICE_ACCOUNT = "app"
# --rotation-poll-interval: a republish sooner than this after the last write is skipped by the driver.
ROTATION_POLL = 4.0
WAIT = 30.0


def driver_deploy_dir() -> Path:
    """deploy/ of the driver module tests/driverclient/go.mod pins (its CRDs), from the module cache."""
    found = subprocess.run(
        ["go", "list", "-mod=readonly", "-m", "-f", "{{.Dir}}", "sigs.k8s.io/secrets-store-csi-driver"],
        cwd=ROOT / "tests" / "driverclient",
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    return Path(found.stdout.strip()) / "deploy"


@dataclass(frozen=True)
class Stack:
    kind: str
    node: str
    driver: DriverProcess
    kubelet: Kubelet
    provider: NodeProvider


@dataclass(frozen=True)
class Published:
    stack: Stack
    volume: PodVolume
    result: CsiResult
    # AWS operations the provider made for this publish (counted at the proxy).
    calls: Counter[str]

    @property
    def target(self) -> Path:
        return self.stack.kubelet.target_path(self.volume)

    def tree(self) -> VolumeTree:
        return read_tree(self.stack.driver.seen(self.target))

    def mounted(self) -> bool:
        return self.stack.driver.is_mount_point(self.target)


@dataclass
class Flow:
    kube: FlowObjects
    aws: ProxyState
    agent: FakePodIdentityAgent
    stacks: dict[str, Stack]
    leak_scan: LeakScan
    tokens: dict[str, dict[str, dict[str, str]]] = field(default_factory=dict)

    def deploy(
        self,
        case: str,
        parameters: Mapping[str, str],
        *,
        role: str | None = ROLE,
        secret_objects: Sequence[Any] = (),
    ) -> dict[str, PodVolume]:
        """The case's objects in namespace CASE-KIND for each stack; kind -> the pod's volume."""
        volumes = {}
        for kind, stack in self.stacks.items():
            namespace = f"{case}-{kind}"
            self.kube.namespace(namespace)
            self.kube.service_account(namespace, SERVICE_ACCOUNT, role)
            self.kube.secret_provider_class(namespace, SPC, parameters, secret_objects)
            volumes[kind] = self.kube.pod(namespace, "app", SERVICE_ACCOUNT, SPC, stack.node)
        return volumes

    def publish(self, kind: str, volume: PodVolume) -> Published:
        """NodePublishVolume as the kubelet sends it, with freshly minted tokens (as on every republish)."""
        tokens = self.kube.tokens(volume)
        self.tokens[volume.namespace] = tokens
        for audience, token in tokens.items():
            self.leak_scan.add_value(f"{volume.namespace} {audience} token", token["token"])
        self.agent.state.accept(tokens[POD_IDENTITY_AUDIENCE]["token"], f"ASIAPODID{kind.upper()}")
        before = len(self.aws.calls)
        result = self.stacks[kind].kubelet.publish(volume, tokens)
        with self.aws.lock:
            calls = Counter(call.operation for call in self.aws.calls[before:])
        return Published(self.stacks[kind], volume, result, calls)

    def publish_all(self, volumes: Mapping[str, PodVolume]) -> dict[str, Published]:
        return {kind: self.publish(kind, volume) for kind, volume in volumes.items()}

    @staticmethod
    def wait_for(done: Callable[[], Any], what: str, within: float = WAIT) -> Any:
        deadline = time.monotonic() + within
        while True:
            value = done()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {within:.0f} s")
            time.sleep(0.2)


def stacks(
    exits: ExitStack,
    workdir: Path,
    *,
    kubeconfig: Path,
    aws_endpoint: str,
    agent_url: str,
    region_of: Callable[[str], None],
) -> dict[str, Stack]:
    """A driver and a provider per kind, registered on `exits` (stopped in reverse order)."""
    if os.geteuid() != 0:
        raise AssertionError("the end-to-end suite runs the driver in a mount namespace: run it as root")
    missing = [
        p.name for p in (BIN / "secrets-store-csi-driver", BIN / "csinode", GO_BINARY) if not p.exists()
    ]
    if missing:
        raise AssertionError(f"missing {', '.join(missing)} in build/bin: run `make e2e` (it builds them)")
    built = {}
    for kind in PROVIDERS:
        node = f"node-{kind}"
        region_of(node)
        home = workdir / kind
        home.mkdir()
        driver = exits.enter_context(
            driver_process(
                BIN / "secrets-store-csi-driver",
                BIN / "csinode",
                home,
                kubeconfig,
                node,
                rotation_poll=ROTATION_POLL,
            )
        )
        provider = exits.enter_context(
            node_provider(
                kind,
                driver,
                node=node,
                go_binary=GO_BINARY,
                kubeconfig=kubeconfig,
                aws_endpoint=aws_endpoint,
                agent_url=agent_url,
                log_path=home / "provider.log",
            )
        )
        built[kind] = Stack(
            kind, node, driver, Kubelet(BIN / "csinode", driver, home / "kubelet" / "pods"), provider
        )
    return built


def start_flow(
    exits: ExitStack, cluster: Cluster, aws_proxy: AwsProxy, workdir: Path, leak_scan: LeakScan
) -> Flow:
    """The flow on `cluster`: the driver's CRDs installed, a fake Pod Identity agent, and a driver and a
    provider per kind (each node in REGION), all registered on `exits`."""
    kube = FlowObjects(cluster)
    kube.install_driver(driver_deploy_dir())
    agent = FakePodIdentityAgent().start()
    exits.callback(agent.stop)
    built = stacks(
        exits,
        workdir,
        kubeconfig=cluster.kubeconfig,
        aws_endpoint=aws_proxy.url,
        agent_url=agent.url,
        region_of=lambda node: kube.node(node, REGION),
    )
    return Flow(kube, aws_proxy.state, agent, built, leak_scan)


def scanned_logs(stack: Stack) -> Iterator[tuple[str, str]]:
    """The logs a leak scan reads: the driver's, and the provider's when it is ours (the Go provider's log
    is the oracle's business)."""
    yield f"{stack.kind} driver log", stack.driver.log()
    if stack.kind == "python":
        yield "python provider log", stack.provider.log()
