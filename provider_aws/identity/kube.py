"""The three Kubernetes reads the provider needs, behind a narrow Protocol.

`LightkubeApi` builds its client on first use, so a provider that never needs the
cluster (static credentials and a region parameter) runs without any kubeconfig.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Awaitable, Mapping
from typing import Protocol, TypeVar

import httpx2
from lightkube import AsyncClient, KubeConfig
from lightkube.core.exceptions import ApiError, ConfigError
from lightkube.resources.core_v1 import Node, Pod, ServiceAccount

from provider_aws.errors import (
    AccessDeniedError,
    CallOutcome,
    NotFoundError,
    PreconditionError,
    ThrottledError,
    UnavailableError,
)

__all__ = ["KubeApi", "LightkubeApi", "OutcomeCounts", "counted"]

_T = TypeVar("_T")
# Calls by (what was called: a resource, region or address family; how it ended).
OutcomeCounts = Counter[tuple[str, str]]


async def counted(counts: OutcomeCounts, what: str, call: Awaitable[_T]) -> _T:
    """Await `call`, counting it under `what` with its outcome (a failure's from its class)."""
    try:
        result = await call
    except Exception as error:
        counts[(what, CallOutcome.of_error(error))] += 1
        raise
    counts[(what, CallOutcome.OK)] += 1
    return result


DEFAULT_TIMEOUT = 10.0


class KubeApi(Protocol):
    """Raises NotFoundError, AccessDeniedError (RBAC) or UnavailableError; nothing else expected."""

    async def service_account_annotations(self, namespace: str, name: str) -> Mapping[str, str]: ...

    async def pod_node_name(self, namespace: str, name: str) -> str | None: ...

    async def node_labels(self, name: str) -> Mapping[str, str]: ...

    async def close(self) -> None: ...


class LightkubeApi:
    """`KubeApi` over lightkube's async client: in-cluster config, else `KUBECONFIG`."""

    def __init__(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        self._timeout = timeout
        self._client: AsyncClient | None = None
        self._lock = asyncio.Lock()

    async def _get_client(self) -> AsyncClient:
        async with self._lock:
            if self._client is None:
                try:
                    config = await asyncio.to_thread(KubeConfig.from_env)
                except (ConfigError, OSError, KeyError) as error:
                    raise PreconditionError(
                        "no Kubernetes API configuration: run the provider in a pod with its ServiceAccount "
                        f"token mounted, or set KUBECONFIG ({type(error).__name__})"
                    ) from error
                self._client = AsyncClient(config=config, timeout=httpx2.Timeout(self._timeout))
            return self._client

    async def service_account_annotations(self, namespace: str, name: str) -> Mapping[str, str]:
        what = f"ServiceAccount {name} (namespace: {namespace})"
        try:
            account = await (await self._get_client()).get(ServiceAccount, name, namespace=namespace)
        except httpx2.HTTPError as error:
            raise _translate(error, what, "serviceaccounts") from error
        return dict(account.metadata.annotations or {}) if account.metadata else {}

    async def pod_node_name(self, namespace: str, name: str) -> str | None:
        what = f"pod {name} (namespace: {namespace})"
        try:
            pod = await (await self._get_client()).get(Pod, name, namespace=namespace)
        except httpx2.HTTPError as error:
            raise _translate(error, what, "pods") from error
        return (pod.spec.nodeName or None) if pod.spec else None

    async def node_labels(self, name: str) -> Mapping[str, str]:
        try:
            node = await (await self._get_client()).get(Node, name)
        except httpx2.HTTPError as error:
            raise _translate(error, f"node {name}", "nodes") from error
        return dict(node.metadata.labels or {}) if node.metadata else {}

    async def close(self) -> None:
        async with self._lock:
            if self._client is not None:
                await self._client.close()
                self._client = None


def _translate(error: httpx2.HTTPError, what: str, resource: str) -> Exception:
    """Kubernetes failures as ProviderErrors that say what to fix."""
    if isinstance(error, ApiError):
        code = error.status.code or 0
    elif isinstance(error, httpx2.HTTPStatusError):
        code = error.response.status_code
    else:
        reason = type(error).__name__
        return UnavailableError(f"the Kubernetes API is unreachable while getting {what} ({reason})")
    if code == 404:
        return NotFoundError(f"{what} not found")
    if code in (401, 403):
        return AccessDeniedError(
            f"the Kubernetes API refused to let the provider get {what}: "
            f"grant its ServiceAccount `get` on {resource} (HTTP {code})"
        )
    if code == 429:
        return ThrottledError(f"the Kubernetes API throttled the provider getting {what} (HTTP 429)")
    return UnavailableError(f"the Kubernetes API failed to return {what} (HTTP {code})")
