"""The Unix-socket server: hygiene, health, reflection (grpcurl), concurrency and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import stat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grpclib import GRPCError, Status
from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse

from provider_aws import DISTRIBUTION
from provider_aws.model import MountedFile, MountInput, MountResult, ObjectVersion, SecretBytes
from provider_aws.rpc.server import SOCKET_MODE, SocketError, SocketInUseError, run_server, serve_until_signal
from provider_aws.settings import Settings
from testkit.betterproto_api.v1alpha1 import CsiDriverProviderStub, MountRequest, VersionRequest
from testkit.grpc_clients import grpcurl, running_provider, short_socket_dir

WAIT = 10.0


def result_for(request: MountInput) -> MountResult:
    """A result derived from the request, so each caller can recognise its own answer."""
    name = json.loads(request.attributes)["name"]
    return MountResult(
        files=(MountedFile(f"{name}.txt", 0o640, SecretBytes(f"value of {name}".encode())),),
        versions=(ObjectVersion(name, "v1"),),
    )


@dataclass
class EchoHandler:
    async def mount(self, request: MountInput) -> MountResult:
        return result_for(request)


@dataclass
class GatedHandler:
    """Counts Mounts as they enter; each waits for `release` before answering."""

    expected: int
    release: asyncio.Event = field(default_factory=asyncio.Event)
    all_entered: asyncio.Event = field(default_factory=asyncio.Event)
    entered: int = 0
    cancelled: int = 0

    async def mount(self, request: MountInput) -> MountResult:
        self.entered += 1
        if self.entered == self.expected:
            self.all_entered.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled += 1
            raise
        return result_for(request)


@dataclass
class BarrierHandler:
    """Every Mount waits until `parties` Mounts are inside the handler at once."""

    barrier: asyncio.Barrier

    async def mount(self, request: MountInput) -> MountResult:
        async with asyncio.timeout(WAIT):
            await self.barrier.wait()
        return result_for(request)


@pytest.fixture
def settings() -> Iterator[Settings]:
    with short_socket_dir() as path:
        yield Settings(socket_dir=path, shutdown_grace=WAIT)


def request(name: str) -> MountRequest:
    attributes = json.dumps({"name": name})
    return MountRequest(attributes=attributes, secrets="null", target_path="/t", permission="420")


async def wait_until_gone(path: Path) -> None:
    async with asyncio.timeout(WAIT):
        while await asyncio.to_thread(os.path.lexists, path):  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.01)


def current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@pytest.mark.asyncio
async def test_socket_is_private_and_serves_version_mount_and_health(settings: Settings) -> None:
    umask_before = current_umask()
    async with running_provider(settings, EchoHandler()):
        assert current_umask() == umask_before  # tightened only around bind()
        info = os.lstat(settings.socket_path)
        assert stat.S_ISSOCK(info.st_mode)
        assert stat.S_IMODE(info.st_mode) == SOCKET_MODE
        assert SOCKET_MODE & 0o007 == 0
        channel = Channel(path=str(settings.socket_path))
        try:
            version = await CsiDriverProviderStub(channel).version(VersionRequest(), timeout=WAIT)
            reply = await CsiDriverProviderStub(channel).mount(request("a"), timeout=WAIT)
            overall = await HealthStub(channel).Check(HealthCheckRequest(), timeout=WAIT)
            named = await HealthStub(channel).Check(
                HealthCheckRequest(service="v1alpha1.CSIDriverProvider"), timeout=WAIT
            )
        finally:
            channel.close()
    assert version.runtime_name == DISTRIBUTION
    assert [(f.path, f.mode, f.contents) for f in reply.files] == [("a.txt", 0o640, b"value of a")]
    assert overall.status == HealthCheckResponse.SERVING
    assert named.status == HealthCheckResponse.SERVING
    assert not settings.socket_path.exists()


@pytest.mark.asyncio
async def test_grpcurl_lists_describes_and_calls_without_proto_files(settings: Settings) -> None:
    async with running_provider(settings, EchoHandler()):
        sock = settings.socket_path
        listed = await grpcurl(sock, "list")
        described = await grpcurl(sock, "describe", "v1alpha1.CSIDriverProvider")
        message = await grpcurl(sock, "describe", "v1alpha1.File")
        version = await grpcurl(sock, "v1alpha1.CSIDriverProvider/Version", options=["-d", "{}"])
        mount = await grpcurl(
            sock,
            "v1alpha1.CSIDriverProvider/Mount",
            options=["-d", json.dumps({"attributes": json.dumps({"name": "g"}), "permission": "420"})],
        )
        health = await grpcurl(sock, "grpc.health.v1.Health/Check")

    for run in (listed, described, message, version, mount, health):
        assert run.returncode == 0, run.stderr
    assert listed.stdout.split() == ["grpc.health.v1.Health", "v1alpha1.CSIDriverProvider"]
    assert "rpc Mount ( .v1alpha1.MountRequest ) returns ( .v1alpha1.MountResponse )" in described.stdout
    assert "int32 mode = 2;" in message.stdout
    assert json.loads(version.stdout) == {
        "version": "v1alpha1",
        "runtimeName": DISTRIBUTION,
        "runtimeVersion": json.loads(version.stdout)["runtimeVersion"],
    }
    mounted = json.loads(mount.stdout)
    assert mounted["objectVersion"] == [{"id": "g", "version": "v1"}]
    assert mounted["files"] == [{"path": "g.txt", "mode": 0o640, "contents": "dmFsdWUgb2YgZw=="}]
    assert json.loads(health.stdout) == {"status": "SERVING"}


@pytest.mark.asyncio
async def test_grpcurl_reports_provider_errors(settings: Settings) -> None:
    async with running_provider(settings, EchoHandler()):
        # The handler cannot parse this request: a bug, so INTERNAL with no detail.
        failed = await grpcurl(
            settings.socket_path, "v1alpha1.CSIDriverProvider/Mount", options=["-d", '{"attributes": "{}"}']
        )
    assert failed.returncode != 0
    assert "Code: Internal" in failed.stderr
    assert "KeyError" not in failed.stderr


@pytest.mark.asyncio
async def test_stale_socket_is_replaced(settings: Settings) -> None:
    settings.socket_dir.mkdir(parents=True)
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(settings.socket_path))
    leftover.close()  # the file stays, with nobody listening: a crashed provider's socket
    settings.socket_path.chmod(0o666)

    async with running_provider(settings, EchoHandler()):
        assert stat.S_IMODE(os.lstat(settings.socket_path).st_mode) == SOCKET_MODE  # a new socket
        channel = Channel(path=str(settings.socket_path))
        try:
            reply = await CsiDriverProviderStub(channel).mount(request("s"), timeout=WAIT)
        finally:
            channel.close()
    assert [v.id for v in reply.object_version] == ["s"]


@pytest.mark.asyncio
@pytest.mark.parametrize("kind", ["file", "directory", "symlink"])
async def test_path_that_is_not_a_socket_is_refused_and_left_alone(settings: Settings, kind: str) -> None:
    settings.socket_dir.mkdir(parents=True)
    path = settings.socket_path
    if kind == "file":
        path.write_text("keep me")
    elif kind == "directory":
        path.mkdir()
    else:
        path.symlink_to(settings.socket_dir / "elsewhere")

    with pytest.raises(SocketInUseError) as raised:
        async with asyncio.timeout(WAIT):
            await run_server(settings, EchoHandler())
    assert str(path) in str(raised.value)
    assert "not a socket" in str(raised.value)
    if kind == "file":
        assert path.read_text() == "keep me"
    elif kind == "directory":
        assert path.is_dir()
    else:
        assert path.is_symlink()


@pytest.mark.asyncio
async def test_socket_path_too_long_is_a_clear_error(settings: Settings) -> None:
    deep = Settings(socket_dir=settings.socket_dir / ("d" * 120))
    with pytest.raises(SocketError) as raised:
        async with asyncio.timeout(WAIT):
            await run_server(deep, EchoHandler())
    assert str(deep.socket_path) in str(raised.value)
    assert "shorter --socket-dir" in str(raised.value)
    assert not isinstance(raised.value, SocketInUseError)


@pytest.mark.asyncio
async def test_live_socket_of_another_server_is_refused(settings: Settings) -> None:
    async with running_provider(settings, EchoHandler()):
        with pytest.raises(SocketInUseError) as raised:
            async with asyncio.timeout(WAIT):
                await run_server(settings, EchoHandler())
        assert "another process is serving" in str(raised.value)
        channel = Channel(path=str(settings.socket_path))
        try:  # the first server is unharmed
            reply = await CsiDriverProviderStub(channel).mount(request("first"), timeout=WAIT)
        finally:
            channel.close()
    assert [v.id for v in reply.object_version] == ["first"]


@pytest.mark.asyncio
async def test_twenty_concurrent_mounts_are_served_at_once(settings: Settings) -> None:
    count = 20
    handler = BarrierHandler(asyncio.Barrier(count))
    async with running_provider(settings, handler):
        channel = Channel(path=str(settings.socket_path))
        try:
            stub = CsiDriverProviderStub(channel)
            async with asyncio.TaskGroup() as group:
                calls = [group.create_task(stub.mount(request(f"m{i}"), timeout=WAIT)) for i in range(count)]
        finally:
            channel.close()
    assert [call.result().object_version[0].id for call in calls] == [f"m{i}" for i in range(count)]


@pytest.mark.asyncio
async def test_stop_drains_mounts_in_flight_and_refuses_new_ones(settings: Settings) -> None:
    handler = GatedHandler(expected=3)
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(run_server(settings, handler, ready=ready, stop=stop))
    async with asyncio.timeout(WAIT):
        await ready.wait()
    channel = Channel(path=str(settings.socket_path))
    try:
        stub = CsiDriverProviderStub(channel)
        calls = [asyncio.create_task(stub.mount(request(f"d{i}"), timeout=WAIT)) for i in range(3)]
        async with asyncio.timeout(WAIT):
            await handler.all_entered.wait()

        stop.set()
        await wait_until_gone(settings.socket_path)  # no new connections
        with pytest.raises(GRPCError) as refused:  # and no new Mounts on open ones
            await stub.mount(request("late"), timeout=WAIT)
        health = await HealthStub(channel).Check(HealthCheckRequest(), timeout=WAIT)
        assert not server.done()

        handler.release.set()
        async with asyncio.timeout(WAIT):
            replies = await asyncio.gather(*calls)
            await server
    finally:
        channel.close()
    assert refused.value.status is Status.UNAVAILABLE
    assert "shutting down" in (refused.value.message or "")
    assert health.status == HealthCheckResponse.NOT_SERVING
    assert [r.object_version[0].id for r in replies] == ["d0", "d1", "d2"]
    assert handler.entered == 3  # the late Mount never reached the handler
    assert handler.cancelled == 0


@pytest.mark.asyncio
async def test_mounts_still_running_after_the_grace_period_are_cancelled(settings: Settings) -> None:
    quick = Settings(socket_dir=settings.socket_dir, shutdown_grace=0.2)
    handler = GatedHandler(expected=1)
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(run_server(quick, handler, ready=ready, stop=stop))
    async with asyncio.timeout(WAIT):
        await ready.wait()
    channel = Channel(path=str(quick.socket_path))
    try:
        call = asyncio.create_task(CsiDriverProviderStub(channel).mount(request("slow"), timeout=WAIT))
        async with asyncio.timeout(WAIT):
            await handler.all_entered.wait()
        stop.set()
        async with asyncio.timeout(WAIT):
            await server
            outcome = await asyncio.gather(call, return_exceptions=True)
    finally:
        channel.close()
    assert handler.cancelled == 1
    assert isinstance(outcome[0], GRPCError)
    assert outcome[0].status == Status.UNAVAILABLE
    assert outcome[0].message is not None and "retry the mount" in outcome[0].message
    assert not quick.socket_path.exists()


@pytest.mark.asyncio
async def test_sigterm_stops_the_server_and_removes_the_socket(settings: Settings) -> None:
    ready = asyncio.Event()
    server = asyncio.create_task(serve_until_signal(settings, EchoHandler(), ready=ready))
    async with asyncio.timeout(WAIT):
        await ready.wait()
    assert settings.socket_path.exists()
    os.kill(os.getpid(), signal.SIGTERM)
    async with asyncio.timeout(WAIT):
        await server
    assert not settings.socket_path.exists()
    # The handler is removed again: SIGTERM has its default meaning after the server returned.
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
