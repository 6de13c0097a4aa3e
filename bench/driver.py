"""The bench's stand-in for the CSI driver: Mount calls over the provider's socket, and what they caused."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from bench.environment import Environment, ProcessGauges, mount_attributes
from provider_aws.rpc import messages
from testkit.grpc_clients import grpcio_method

__all__ = ["NAMESPACE", "Driver"]

NAMESPACE = "bench"
TARGET_PATH = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount"
MOUNT_TIMEOUT = 60.0
# Connections to the provider: Mounts beyond 100 per connection wait in the client (h2's limit).
CONNECTIONS = 10


class Driver(ProcessGauges):
    """Calls Mount over the provider's socket as the CSI driver does, and counts what it caused.

    grpcio (gRPC's C core) rather than grpclib: closer to the driver's grpc-go, and cheap
    enough that 100 concurrent calls do not make this process the bottleneck.
    """

    def __init__(
        self,
        env: Environment,
        connections: int = CONNECTIONS,
        *,
        socket_path: Path | None = None,
        pid: int | None = None,
        targets: Path | None = None,
    ) -> None:
        """`socket_path` and `pid`: another provider's (the Go provider's) instead of env's. `targets`:
        each pod's files are written under targets/POD, as the driver writes them, and that is the
        Mount's target path (the Go provider reads unchanged files back from there on a poll)."""
        self.env = env
        self._pid = env.pid if pid is None else pid
        self.targets = targets
        # The driver holds one connection; more let more Mounts than h2's 100 streams per
        # connection be in flight at once (the flight case). Each channel its own connection.
        self.channels = [
            grpc.aio.insecure_channel(
                f"unix:{socket_path or env.socket_path}", options=[("grpc.use_local_subchannel_pool", 1)]
            )
            for _ in range(connections)
        ]
        self._request_type = messages.MountRequest
        self._mounts = [grpcio_method(channel, "Mount", messages.MountResponse) for channel in self.channels]
        self._accounts = 0

    @property
    def pid(self) -> int:
        return self._pid

    async def close(self) -> None:
        for channel in self.channels:
            await channel.close()

    def _write_files(self, target: Path, files: Sequence[Any]) -> None:
        for file in files:
            path = target / file.path
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(file.contents)

    @property
    def service_accounts(self) -> int:
        return self._accounts

    def new_service_account(self, prefix: str) -> str:
        self._accounts += 1
        name = f"{prefix}-{self._accounts}"
        self.env.add_service_account(NAMESPACE, name)
        return name

    def calls_so_far(self) -> int:
        with self.env.proxy.state.lock:
            return len(self.env.proxy.state.calls)

    def call_seconds(self, since: int) -> list[float]:
        with self.env.proxy.state.lock:
            return [call.end - call.start for call in self.env.proxy.state.calls[since:]]

    def start_spread(self, since: int) -> float:
        """Seconds between the first and the last of these requests reaching the proxy."""
        with self.env.proxy.state.lock:
            starts = [call.start for call in self.env.proxy.state.calls[since:]]
        return max(starts) - min(starts) if starts else 0.0

    def counts(self) -> Counter[str]:
        counts = Counter(self.env.proxy.state.operations())
        with self.env.kube.state.lock:
            for resource, n in self.env.kube.state.gets.items():
                counts[f"GET {resource.removesuffix('s')}"] += n
        return counts

    async def mount(
        self,
        pod: str,
        account: str,
        objects: str,
        current: Sequence[tuple[str, str]] = (),
        *,
        connection: int = 0,
    ) -> tuple[float, Any]:
        """(seconds, MountResponse); `current` holds (id, version) pairs of a previous answer."""
        request = self._request_type(
            attributes=mount_attributes(NAMESPACE, pod, account, objects),
            secrets="null",
            target_path=TARGET_PATH if self.targets is None else str(self.targets / pod),
            permission="420",
            current_object_version=[{"id": key, "version": value} for key, value in current],
        )
        start = time.perf_counter()
        reply = await self._mounts[connection % len(self._mounts)](request, timeout=MOUNT_TIMEOUT)
        elapsed = time.perf_counter() - start
        if reply.error.code:
            raise RuntimeError(f"Mount failed with {reply.error.code}")
        if self.targets is not None:
            self._write_files(self.targets / pod, reply.files)
        return elapsed, reply
