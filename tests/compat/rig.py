"""The differential rig: the same Mount to `provider-aws serve` and to the real Go provider, compared.

Both providers run as the DaemonSet runs them, against one moto (behind the counting, fault-injecting
proxy), one HTTPS fake Kubernetes API and, for Pod Identity, fake agents on 127.0.0.1 and [::1]. Each Mount
goes through the driver's own client program (tests/driverclient), which writes the files into the side's
target directory as the driver does; the Go provider reads unchanged files back from there on rotation.

A case seeds moto and the fake cluster once, then runs its steps; each step mounts on our side, then on
the Go side, against the same AWS state (so versions are comparable), each side sending the versions of
its own previous step. Compared per step: success or failure (the Go provider's errors are all UNKNOWN, so
classes, not codes), the written tree (paths, contents, modes) and the object versions.
"""

from __future__ import annotations

import hashlib
import json
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from provider_aws.cli.drivermount import MountOptions, SecretProviderClass, build_request
from provider_aws.identity.credentials import ROLE_ARN_ANNOTATION
from provider_aws.identity.regions import REGION_LABEL
from provider_aws.rpc.messages import MountRequest
from testkit.awsobjects import Put, store
from testkit.awsproxy import AwsProxy, Fault
from testkit.driverclient import Entry, driver_mount, written_tree
from testkit.identity import IRSA, POD_IDENTITY, ROLE, jwt
from testkit.kubeapi import FakeKubeApi
from testkit.podagent import FakePodIdentityAgent

__all__ = [
    "FAILOVER",
    "PRIMARY",
    "SIDES",
    "Pod",
    "Rig",
    "Side",
    "StepOutcome",
    "attributes_for",
]

PRIMARY = "eu-west-1"
FAILOVER = "eu-central-1"
SIDES = ("ours", "go")
SM_OPERATIONS = ("GetSecretValue", "BatchGetSecretValue", "DescribeSecret")
SSM_OPERATIONS = ("GetParameters", "GetParameter")
# After a Mount that failed with a transport error: how long a crashing Go provider may take to exit.
GO_EXIT_WAIT = 2.0


@dataclass(frozen=True)
class Pod:
    """The pod of a case: its own namespace, so no cache of either provider carries over between cases."""

    namespace: str
    name: str = "app"
    service_account: str = "app-sa"
    node: str = ""

    @property
    def uid(self) -> str:
        return f"uid-{self.namespace}-{self.name}"


def attributes_for(
    pod: Pod,
    parameters: Mapping[str, str],
    *,
    irsa: bool = True,
    pod_identity: bool = True,
) -> str:
    """MountRequest.attributes as the driver sends them for `pod` (tokens for IRSA and Pod Identity)."""
    options = MountOptions(
        target=Path(f"/var/lib/kubelet/pods/{pod.uid}/volumes/kubernetes.io~csi/secrets/mount"),
        namespace=pod.namespace,
        pod=pod.name,
        pod_uid=pod.uid,
        service_account=pod.service_account,
        sts_token=jwt(pod.namespace, pod.service_account, pod.name, IRSA) if irsa else None,
        pod_identity_token=(
            jwt(pod.namespace, pod.service_account, pod.name, POD_IDENTITY) if pod_identity else None
        ),
    )
    return build_request(SecretProviderClass("compat", dict(parameters)), options).attributes


@dataclass(frozen=True)
class Side:
    """What one provider's Mount came to, as the driver saw it."""

    ok: bool
    status: str
    message: str
    tree: Mapping[str, Entry]
    versions: Mapping[str, str]
    aws_requests: int
    kube_requests: int
    crashed: bool = False  # the provider's process died during this Mount

    def summary(self) -> dict[str, Any]:
        """Plain data for the results file: file digests, not contents."""
        return {
            "ok": self.ok,
            "status": self.status,
            "crashed": self.crashed,
            "files": {
                path: {
                    "mode": oct(entry.mode),
                    "sha256": hashlib.sha256(entry.contents or b"").hexdigest()[:12],
                }
                for path, entry in sorted(self.tree.items())
                if entry.kind == "file"
            },
            "versions": dict(sorted(self.versions.items())),
            "aws_requests": self.aws_requests,
            "kube_requests": self.kube_requests,
        }


def _outcome_text(side: Side) -> str:
    if side.crashed:
        return "failure (its process crashed)"
    return "success" if side.ok else "failure"


def compare(ours: Side, go: Side) -> list[str]:
    """How the two sides differ (empty: they agree). Failures compare by class only."""
    if ours.ok != go.ok:
        return [f"outcome: ours {_outcome_text(ours)}, Go {_outcome_text(go)}"]
    if not ours.ok:
        return []
    found: list[str] = []
    only_ours = sorted(set(ours.tree) - set(go.tree))
    only_go = sorted(set(go.tree) - set(ours.tree))
    if only_ours:
        found.append(f"paths only ours writes: {only_ours}")
    if only_go:
        found.append(f"paths only Go writes: {only_go}")
    for path in sorted(set(ours.tree) & set(go.tree)):
        mine, theirs = ours.tree[path], go.tree[path]
        if mine.kind != theirs.kind:
            found.append(f"{path}: ours a {mine.kind}, Go a {theirs.kind}")
        elif mine.contents != theirs.contents:
            found.append(f"{path}: contents differ")
        if mine.mode != theirs.mode:
            found.append(f"{path}: mode ours {oct(mine.mode)}, Go {oct(theirs.mode)}")
    if dict(ours.versions) != dict(go.versions):
        ids = sorted(set(ours.versions) | set(go.versions))
        differing = [key for key in ids if ours.versions.get(key) != go.versions.get(key)]
        found.append(f"object versions differ for {differing}")
    return found


@dataclass(frozen=True)
class StepOutcome:
    step: str
    ours: Side
    go: Side

    @property
    def differences(self) -> list[str]:
        return compare(self.ours, self.go)


@dataclass
class Rig:
    """One world shared by every case; `sockets` maps a side to its provider's socket directory."""

    moto: str
    proxy: AwsProxy
    kube: FakeKubeApi
    driverclient: Path
    sockets: dict[str, Path]
    work: Path
    seed_client: Callable[[str, str], Any]
    agents: Mapping[str, FakePodIdentityAgent] = field(default_factory=dict)
    # Whether the Go provider still runs, and how to start it again (it can crash: a nil dereference).
    go_alive: Callable[[float], bool] = lambda _wait: True
    restart_go: Callable[[], None] = lambda: None
    cases_run: int = 0

    # --- the world ---
    def reset(self) -> None:
        """Empty moto, no faults, nothing counted: each case starts from nothing."""
        request = urllib.request.Request(f"{self.moto}/moto-api/reset", method="POST")
        urllib.request.urlopen(request, timeout=30)
        self.proxy.state.reset()

    def store(self, puts: Sequence[Put]) -> dict[str, str]:
        return store(self.seed_client, puts)

    def fault(self, region: str, operations: Sequence[str], fault: Fault) -> None:
        for operation in operations:
            self.proxy.state.faults[(region, operation)] = fault

    def new_pod(
        self, *, role: bool = True, node: str | None = None, region_label: str | None = PRIMARY
    ) -> Pod:
        """A pod of its own namespace with an annotated (or unannotated) ServiceAccount; with `node`,
        the pod is scheduled there and the node carries `region_label` (None: no label, "": no node)."""
        self.cases_run += 1
        pod = Pod(f"compat-{self.cases_run}", node=node or "")
        state = self.kube.state
        with state.lock:
            state.service_accounts[(pod.namespace, pod.service_account)] = (
                {ROLE_ARN_ANNOTATION: ROLE} if role else {}
            )
            if node is not None:
                state.pods[(pod.namespace, pod.name)] = node
                if region_label is not None:
                    state.nodes[node] = {REGION_LABEL: region_label} if region_label else {}
        return pod

    # --- Mounts ---
    def target(self, case: str, side: str) -> Path:
        path = self.work / case / side
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def mount(self, side: str, request: MountRequest, target: Path, current: Mapping[str, str]) -> Side:
        if side == "go" and not self.go_alive():
            self.restart_go()
        aws_before = self.proxy.state.count()
        kube_before = self.kube.state.count()
        result = await driver_mount(self.driverclient, self.sockets[side], request, target, current=current)
        crashed = (
            side == "go" and result.status_code not in {"OK", "Unknown"} and not self.go_alive(GO_EXIT_WAIT)
        )
        if crashed:
            self.restart_go()
        ok = result.status_code == "OK" and not crashed
        tree = written_tree(target) if ok and (target / "..data").exists() else {}
        return Side(
            ok=ok,
            status=result.status_code,
            message=result.message,
            tree=tree,
            versions=dict(result.object_versions or {}),
            aws_requests=self.proxy.state.count() - aws_before,
            kube_requests=self.kube.state.count() - kube_before,
            crashed=crashed,
        )

    async def both(
        self,
        case: str,
        step: str,
        attributes: str,
        *,
        permission: str = "420",
        secrets: str = "null",
        current: Mapping[str, Mapping[str, str]] | None = None,
    ) -> StepOutcome:
        """One step on both sides (ours first), each in its own target, with its own current versions."""
        sides: dict[str, Side] = {}
        for side in SIDES:
            target = self.target(case, side)
            request = MountRequest(
                attributes=attributes, secrets=secrets, target_path=str(target), permission=permission
            )
            sides[side] = await self.mount(side, request, target, (current or {}).get(side, {}))
        return StepOutcome(step, sides["ours"], sides["go"])


def versions_of(outcome: StepOutcome) -> dict[str, dict[str, str]]:
    """Each side's versions after a step, for the next step's current_object_version."""
    return {"ours": dict(outcome.ours.versions), "go": dict(outcome.go.versions)}


def objects_yaml(entries: Sequence[Mapping[str, Any]]) -> str:
    """The `objects` parameter's YAML for these entries (JSON is YAML)."""
    return "".join(f"- {json.dumps(entry)}\n" for entry in entries)
