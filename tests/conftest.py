"""Shared fixtures: moto's real server on loopback, behind a counting, fault-injecting proxy."""

from __future__ import annotations

import logging
import urllib.request
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from tests.support.awsproxy import AwsProxy, ProxyState

logging.getLogger("werkzeug").setLevel(logging.ERROR)

TEST_ACCESS_KEY = "AKIDTESTTESTTEST"
TEST_SECRET_KEY = "test-secret-access-key"


@pytest.fixture(scope="session")
def moto_server() -> Iterator[str]:
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture(scope="session")
def aws_proxy(moto_server: str) -> Iterator[AwsProxy]:
    host, port = moto_server.removeprefix("http://").split(":")
    proxy = AwsProxy((host, int(port))).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def aws(moto_server: str, aws_proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyState]:
    """A clean moto with the provider's AWS endpoint pointed at the counting proxy."""
    urllib.request.urlopen(urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10)
    aws_proxy.state.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL", aws_proxy.url)
    for name in ("AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    yield aws_proxy.state
    aws_proxy.state.reset()


def seed_client(moto_server: str, service: str, region: str) -> Any:
    """A plain boto3 client straight to moto (not through the proxy) for seeding data."""
    return boto3.client(
        service,
        region_name=region,
        endpoint_url=moto_server,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
