"""Mounts against the real `provider-aws serve` processes, over gRPC on their sockets, as the
CSI driver sends them (one channel per node)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc

from fleet.scenarios import FAILOVER, NAMESPACE, PRIMARY, Pod, Scenario
from provider_aws.rpc import messages
from testkit.grpc_clients import grpcio_method
from testkit.identity import jwt
from testkit.requests import pod_attributes
from testkit.serveproc import ServeProcess

__all__ = ["MOUNT_TIMEOUT", "OursDriver", "Outcome", "objects_yaml"]

# The driver's deadline for one Mount (real seconds).
MOUNT_TIMEOUT = 30.0
TARGET_PATH = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount"

Versions = tuple[tuple[str, str], ...]
Outcome = tuple[float, str, Versions]


def objects_yaml(pod: Pod) -> str:
    lines = [f"- objectName: {name}\n  objectType: secretsmanager\n" for name in pod.secrets]
    lines += [f"- objectName: {name}\n  objectType: ssmparameter\n" for name in pod.parameters]
    return "".join(lines)


class OursDriver:
    label = "this provider"

    def __init__(self, nodes: Sequence[ServeProcess] | Sequence[Path], scenario: Scenario) -> None:
        """`nodes`: the serve processes, or the socket paths of other providers (one per node)."""
        self._request = messages.MountRequest
        sockets = [node if isinstance(node, Path) else node.socket_path for node in nodes]
        self._channels = [grpc.aio.insecure_channel(f"unix:{socket}") for socket in sockets]
        self._mounts = [grpcio_method(channel, "Mount", messages.MountResponse) for channel in self._channels]
        self._scenario = scenario
        self._attributes: dict[str, str] = {}

    def _attributes_of(self, pod: Pod) -> str:
        found = self._attributes.get(pod.name)
        if found is None:
            extra = {"failoverRegion": FAILOVER} if self._scenario.outage else {}
            found = pod_attributes(
                objects_yaml(pod),
                pod=pod.name,
                namespace=NAMESPACE,
                service_account=pod.service_account,
                region=PRIMARY,
                sts_token=jwt(NAMESPACE, pod.service_account, pod.name),
                **extra,
            )
            self._attributes[pod.name] = found
        return found

    async def mount(self, pod: Pod, current: Versions) -> Outcome:
        request = self._request(
            attributes=self._attributes_of(pod),
            secrets="null",
            target_path=self.target_path(pod),
            permission="420",
            current_object_version=[{"id": key, "version": value} for key, value in current],
        )
        start = time.perf_counter()
        reply: Any
        try:
            reply = await self._mounts[pod.node](request, timeout=MOUNT_TIMEOUT)
        except grpc.aio.AioRpcError as error:
            return time.perf_counter() - start, error.code().name, current
        elapsed = time.perf_counter() - start
        if reply.error.code:
            return elapsed, f"error {reply.error.code}", current
        self.written(pod, reply.files)
        return elapsed, "OK", tuple((v.id, v.version) for v in reply.object_version)

    def target_path(self, pod: Pod) -> str:
        return TARGET_PATH

    def written(self, pod: Pod, files: Sequence[Any]) -> None:
        """The files of a Mount, which the driver writes; this provider never reads them back."""

    async def close(self) -> None:
        for channel in self._channels:
            await channel.close()
