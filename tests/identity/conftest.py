"""Fixtures of the identity tests: STS through a recording relay, and a Kubernetes client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from provider_aws.identity.kube import LightkubeApi
from testkit.awsproxy import AwsProxy, ProxyState
from testkit.stsrelay import StsRelay


@pytest.fixture
def relay(aws: ProxyState, aws_proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[StsRelay]:
    """STS through a recording relay, then the counting proxy, then moto."""
    server = StsRelay(aws_proxy.url).start()
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", server.url)
    try:
        yield server
    finally:
        server.stop()


@pytest_asyncio.fixture
async def kube() -> AsyncIterator[LightkubeApi]:
    """A Kubernetes client of the cluster the test serves (KUBECONFIG set by its `cluster`)."""
    api = LightkubeApi(timeout=5)
    try:
        yield api
    finally:
        await api.close()
