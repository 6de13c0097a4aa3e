"""/healthz, /readyz and /metrics over real HTTP on 127.0.0.1, against the real provider socket."""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest

from provider_aws.model import MountInput, MountResult
from provider_aws.ops.health import (
    HealthServer,
    HttpEndpointError,
    check_socket,
    health_endpoint,
    parse_http_addr,
)
from provider_aws.ops.metrics import Metrics
from provider_aws.settings import Settings
from testkit.grpc_clients import running_provider
from testkit.identity import served_cluster
from testkit.leakscan import LeakScan
from testkit.scrape import HTTP_TIMEOUT, get
from testkit.serveproc import launch, serve_env, serve_process

WAIT_LIMIT = 20.0


class Refuses:
    """A handler the probes never reach: they only call Health."""

    async def mount(self, request: MountInput) -> MountResult:
        raise AssertionError("no Mount is made in these tests")


def base_url(server: HealthServer) -> str:
    host, port = server.address
    return f"http://{host}:{port}"


@pytest.mark.asyncio
async def test_readiness_flips_with_the_socket(socket_dir: Path) -> None:
    settings = Settings(socket_dir=socket_dir, shutdown_grace=2.0)
    async with health_endpoint("127.0.0.1:0", settings.socket_path, Metrics()) as server:
        assert server is not None
        host, port = server.address
        assert host == "127.0.0.1" and port > 0
        url = base_url(server)
        # Before the socket exists: alive (starting), not ready.
        assert await get(f"{url}/healthz") == (200, "ok: alive (socket not open)\n")
        status, text = await get(f"{url}/readyz")
        assert (status, text) == (503, "not ready: the provider socket does not exist\n")

        async with running_provider(settings, Refuses()):
            assert await get(f"{url}/readyz") == (200, "ok: ready\n")
            assert await get(f"{url}/healthz") == (200, "ok: alive (SERVING)\n")

        # Stopped: the socket is gone again.
        assert (await get(f"{url}/readyz"))[0] == 503
        assert (await get(f"{url}/healthz"))[0] == 200
    # Stopped endpoint: the port no longer answers.
    with pytest.raises(aiohttp.ClientConnectionError):
        await get(f"{url}/healthz")


@pytest.mark.asyncio
async def test_a_socket_that_does_not_answer_is_not_alive(socket_dir: Path) -> None:
    os.makedirs(socket_dir)
    path = socket_dir / "aws.sock"
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(str(path))
    listener.listen(8)  # accepts connections, never speaks HTTP/2: a wedged provider
    try:
        server = HealthServer("127.0.0.1:0", path, Metrics(), check_timeout=0.5)
        await server.start()
        try:
            status, text = await get(f"{base_url(server)}/healthz")
            assert status == 503
            assert text == "not alive: no health answer over the socket within 0.5s\n"
            status, text = await get(f"{base_url(server)}/readyz")
            assert status == 503
        finally:
            await server.stop()
    finally:
        listener.close()
    # A socket file with no listener behind it: refused at once.
    result = await check_socket(path, 0.5)
    assert not result.answered and not result.serving
    assert result.detail == "cannot reach the provider socket: ConnectionRefusedError"


@pytest.mark.asyncio
async def test_metrics_page_is_prometheus_text(socket_dir: Path) -> None:
    metrics = Metrics(version="9.9.9")
    metrics.started()
    async with health_endpoint("127.0.0.1:0", socket_dir / "aws.sock", metrics) as server:
        assert server is not None
        async with (
            aiohttp.ClientSession(timeout=HTTP_TIMEOUT) as session,
            session.get(f"{base_url(server)}/metrics") as response,
        ):
            assert response.status == 200
            assert response.headers["Content-Type"].startswith("text/plain; version=")
            text = await response.text()
    assert 'provider_aws_build_info{version="9.9.9"} 1.0' in text
    assert "provider_aws_mounts_in_flight 1.0" in text
    assert "# TYPE provider_aws_mount_duration_seconds histogram" in text


@pytest.mark.asyncio
async def test_empty_address_disables_and_bad_addresses_fail_clearly(socket_dir: Path) -> None:
    async with health_endpoint("", socket_dir / "aws.sock", Metrics()) as server:
        assert server is None
    for bad in ("8989", "host:port", "127.0.0.1:70000"):
        with pytest.raises(HttpEndpointError, match="is not HOST:PORT"):
            parse_http_addr(bad)
    assert parse_http_addr(":8989") == ("0.0.0.0", 8989)
    assert parse_http_addr("[::1]:0") == ("::1", 0)
    # A port already taken: the error names the address.
    async with health_endpoint("127.0.0.1:0", socket_dir / "aws.sock", Metrics()) as taken:
        assert taken is not None
        port = taken.address[1]
        with pytest.raises(HttpEndpointError, match=f"cannot listen on 127.0.0.1:{port}"):
            async with health_endpoint(f"127.0.0.1:{port}", socket_dir / "aws.sock", Metrics()):
                pass


@pytest.mark.asyncio
async def test_ipv6_loopback(socket_dir: Path) -> None:
    if not socket.has_ipv6:
        pytest.skip("no IPv6 on this machine")
    async with health_endpoint("[::1]:0", socket_dir / "aws.sock", Metrics()) as server:
        assert server is not None
        host, port = server.address
        assert host == "::1"
        assert await get(f"http://[::1]:{port}/healthz") == (200, "ok: alive (socket not open)\n")


def _child_env() -> dict[str, str]:
    return {**serve_env(), "AWS_REGION": "eu-west-1", "KUBECONFIG": os.environ["KUBECONFIG"]}


@pytest.mark.asyncio
async def test_serve_command_runs_the_endpoint_until_sigterm(
    socket_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with served_cluster(tmp_path, monkeypatch):
        flags = ["--http-addr", "127.0.0.1:0"]
        async with serve_process(socket_dir, tmp_path / "serve.log", flags, env=_child_env()) as child:
            url = child.http_url()
            assert await get(f"{url}/readyz") == (200, "ok: ready\n")
            status, text = await get(f"{url}/metrics")
            assert status == 200
            assert "provider_aws_build_info{" in text
            assert "# TYPE provider_aws_kubernetes_requests_total counter" in text
            assert "# TYPE provider_aws_shared_calls_total counter" in text
            assert "# TYPE provider_aws_aws_request_duration_seconds histogram" in text
            assert "process_resident_memory_bytes " in text
            child.send(signal.SIGTERM)
            assert await child.exit_status(WAIT_LIMIT) == 0
    assert not (socket_dir / "aws.sock").exists()


@pytest.mark.asyncio
async def test_serve_exits_with_a_clear_error_when_the_port_is_taken(
    socket_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leak_scan: LeakScan
) -> None:
    taken = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    port = taken.getsockname()[1]
    try:
        with served_cluster(tmp_path, monkeypatch):
            flags = ["--http-addr", f"127.0.0.1:{port}"]
            child = await launch(socket_dir, tmp_path / "serve.log", flags, env=_child_env())
            try:
                assert await child.exit_status(WAIT_LIMIT) == 1
            finally:
                await child.kill()
    finally:
        taken.close()
    leak_scan.add_text("provider-aws serve child: log", child.log())
    assert f"provider-aws: cannot listen on 127.0.0.1:{port} for /healthz" in child.log()
