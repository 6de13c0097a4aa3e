"""The real Go provider at fleet scale: K `provider-aws-go` processes (`make goprovider`) for K nodes,
like ours, through the same quota proxy and HTTPS fake Kubernetes API.

Time is compressed as for ours where the Go provider has a setting for it: its Kubernetes client's
`--qps` (5) is multiplied by the compression, `--burst` (10) kept. Its SDK's retry back-off (aws-sdk-go-v2's
standard retryer, up to 20 s) has no setting, so it runs in real time: in a compressed scenario it weighs
`compression` times more in fleet time than it would in a real fleet. Each pod's files are written under a
target directory of its own, as the driver writes them: on a rotation poll the Go provider reads an
unchanged secret back from the pod's mounted file.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from fleet.ours import OursDriver
from fleet.scenarios import Pod, Scenario
from fleet.world import World
from testkit.goprovider import go_env, go_provider

__all__ = ["GO_KUBE_BURST", "GO_KUBE_QPS", "GoProcessDriver", "started_go_nodes"]

GO_KUBE_QPS, GO_KUBE_BURST = 5.0, 10


@contextmanager
def started_go_nodes(world: World, scenario: Scenario, count: int) -> Iterator[list[Path]]:
    """`count` Go provider processes, ready; their socket paths. Stopped by pid on exit."""
    kubeconfig = world.kube.write_kubeconfig(world.scratch / "kubeconfig")
    env = go_env(world.proxy.url, kubeconfig)
    flags = (f"--qps={GO_KUBE_QPS * scenario.compression:g}", f"--burst={GO_KUBE_BURST}")
    with contextlib.ExitStack() as stack:
        sockets = []
        for index in range(count):
            socket_dir = world.scratch / f"go{index}"
            stack.enter_context(go_provider(socket_dir, world.scratch / f"go-{index}.log", env, flags))
            sockets.append(socket_dir / "aws.sock")
        yield sockets


class GoProcessDriver(OursDriver):
    label = "Go provider 3.1.1 (real processes)"

    def __init__(self, sockets: Sequence[Path], scenario: Scenario, targets: Path) -> None:
        super().__init__(sockets, scenario)
        self._targets = targets

    def target_path(self, pod: Pod) -> str:
        return str(self._targets / pod.name)

    def written(self, pod: Pod, files: Sequence[Any]) -> None:
        for file in files:
            path = self._targets / pod.name / file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.contents)
