"""Shared fixtures: moto's real server on loopback, behind a counting, fault-injecting proxy; the leak scan.

The leak scan (testkit/leakscan.py) runs over the whole session: each test's provider logs, gRPC
error messages, /metrics bodies and captured stderr are kept, every value and token the tests used is
registered, and `pytest_sessionfinish` fails the run if any registered value shows up in that output.
"""

from __future__ import annotations

import logging
import time
import urllib.request
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.server import ThreadedMotoServer

from testkit.awsproxy import AwsProxy, ProxyState
from testkit.grpc_clients import short_socket_dir
from testkit.leakscan import LeakScan, harvest_moto, install, report
from testkit.logs import configure_test_logging
from testkit.requests import TEST_ACCESS_KEY, TEST_SECRET_KEY

pytest_plugins = ["pytester"]

logging.getLogger("werkzeug").setLevel(logging.ERROR)

LEAK_SCAN = pytest.StashKey[LeakScan]()


def pytest_configure(config: pytest.Config) -> None:
    scan = LeakScan()
    scan.add_value("conftest TEST_SECRET_KEY", TEST_SECRET_KEY)
    config.stash[LEAK_SCAN] = scan


@pytest.fixture(autouse=True)
def _leak_capture(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Provider logs as in production (JSON, redacted), at debug level, into this test's capture."""
    scan = request.config.stash[LEAK_SCAN]
    source = request.node.nodeid
    configure_test_logging("json", "debug", scan.sink(f"{source} log"))
    install(scan, monkeypatch, source, getattr(request, "module", None))


@pytest.fixture
def leak_scan(request: pytest.FixtureRequest) -> LeakScan:
    """The session's scan, for tests that capture output themselves (a child's stderr, a scraped page)."""
    return request.config.stash[LEAK_SCAN]


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, Any]:
    report = yield
    # stderr captured by pytest: children that inherit it (provider subprocesses) and stray writes.
    # stdout is left out: CLI tools print their results (which may show values) there.
    for name, content in report.sections:
        if name == f"Captured stderr {report.when}":
            item.config.stash[LEAK_SCAN].add_text(f"{item.nodeid} stderr ({report.when})", content)
    return report


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    scan = session.config.stash.get(LEAK_SCAN, None)
    if scan is None:
        return
    started = time.monotonic()
    harvest_moto(scan)
    hits = scan.scan()
    took = time.monotonic() - started
    writer = session.config.pluginmanager.get_plugin("terminalreporter")
    if hits:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        lines = report(hits)
    else:
        searched, texts = scan.searched_values(), len(scan.sources())
        lines = [f"leak scan: {searched} values searched in {texts} captured texts in {took:.1f} s, no hit"]
    if writer is not None:
        writer.write("\n")
        for line in lines:
            writer.write_line(line, red=bool(hits))


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A directory for aws.sock with a path short enough for a Unix socket address."""
    with short_socket_dir() as path:
        yield path


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
def aws(
    moto_server: str, aws_proxy: AwsProxy, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[ProxyState]:
    """A clean moto with the provider's AWS endpoint pointed at the counting proxy."""
    harvest_moto(request.config.stash[LEAK_SCAN])  # what earlier tests stored, before the reset drops it
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
