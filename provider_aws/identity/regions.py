"""Which AWS region a Mount uses when its SecretProviderClass names none.

Order: the `region` parameter; `AWS_REGION`; the `topology.kubernetes.io/region` label of
this provider's own node (`NODE_NAME`), read once; and only when `NODE_NAME` is unset, the
label of the pod's node. Pods never move between nodes and node regions never change, so
every answer from Kubernetes is kept (bounded) and a normal Mount makes no GET at all.
"""

from __future__ import annotations

from collections import Counter

from provider_aws.cache import CachingLoader
from provider_aws.errors import ConfigError, PreconditionError, ProviderError
from provider_aws.identity.kube import KubeApi, OutcomeCounts, counted
from provider_aws.model import MountPlan
from provider_aws.settings import Settings

__all__ = ["REGION_LABEL", "RegionResolver"]

REGION_LABEL = "topology.kubernetes.io/region"
# Nodes and pods seen; far more than one node runs.
_MAX_ENTRIES = 4096
_FOREVER = float("inf")


class RegionResolver:
    def __init__(self, settings: Settings, kube: KubeApi, kube_gets: OutcomeCounts | None = None) -> None:
        self._settings = settings
        self._kube = kube
        # Kubernetes GETs by resource, counted into the counter the caller passes (metrics').
        self.kube_gets: OutcomeCounts = kube_gets if kube_gets is not None else Counter()
        # node name -> region label ("" when the node has none; such answers are not kept)
        self._node_regions: CachingLoader[str, str] = CachingLoader(_MAX_ENTRIES)
        # pod UID (or namespace/name) -> node name
        self._pod_nodes: CachingLoader[tuple[str, str, str], str] = CachingLoader(_MAX_ENTRIES)

    async def region_for(self, plan: MountPlan) -> str:
        if plan.region:
            return plan.region
        if self._settings.aws_region:
            return self._settings.aws_region
        node = self._settings.node_name
        if node is None:
            node = await self._pod_node(plan)
        try:
            region = await self._node_region(node)
        except ProviderError as error:
            raise _looking_up(error, f"failed to retrieve region from node {node}", _fixes(node)) from error
        if region:
            return region
        raise PreconditionError(
            f"failed to retrieve region from node {node}: it has no {REGION_LABEL} label; {_fixes(node)}"
        )

    async def _node_region(self, node: str) -> str:
        async def load() -> tuple[str, float]:
            labels = await counted(self.kube_gets, "nodes", self._kube.node_labels(node))
            region = labels.get(REGION_LABEL, "")
            return region, (_FOREVER if region else 0.0)

        return await self._node_regions.get(node, load)

    async def _pod_node(self, plan: MountPlan) -> str:
        pod = plan.pod

        async def load() -> tuple[str, float]:
            node = await counted(self.kube_gets, "pods", self._kube.pod_node_name(pod.namespace, pod.name))
            return node or "", (_FOREVER if node else 0.0)

        try:
            node = await self._pod_nodes.get((pod.namespace, pod.name, pod.uid), load)
        except ProviderError as error:
            where = f"failed to retrieve region: looking up the node of pod {pod.name} ({pod.namespace})"
            raise _looking_up(error, where, _fixes(None)) from error
        if not node:
            raise PreconditionError(
                f"failed to retrieve region: pod {pod.name} (namespace: {pod.namespace}) is not bound to a "
                "node yet; set the region parameter in the SecretProviderClass, or NODE_NAME on the provider"
            )
        return node

    async def close(self) -> None:
        await self._node_regions.close()
        await self._pod_nodes.close()


def _fixes(node: str | None) -> str:
    label = f"the {REGION_LABEL} label on node {node}" if node else f"the {REGION_LABEL} label on the node"
    return f"set the region parameter in the SecretProviderClass (or AWS_REGION on the provider), or {label}"


def _looking_up(error: ProviderError, where: str, fixes: str) -> ProviderError:
    """The Kubernetes failure, same class (so same status), saying what it was for and how to avoid it."""
    text = f"{where}: {error.message}; {fixes}"
    return ConfigError([text]) if isinstance(error, ConfigError) else type(error)(text)
