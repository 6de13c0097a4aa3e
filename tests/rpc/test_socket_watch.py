"""The socket taken away while serving: removed or replaced by a stale socket, it is bound again within
the watch interval and Mounts go on; taken by another live listener or a plain file, it is left alone
and /healthz fails (so that the kubelet restarts the provider), and the stop never removes it."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from grpclib.client import Channel

from provider_aws.model import MountedFile, MountInput, MountResult, ObjectVersion, SecretBytes
from provider_aws.ops.health import health_endpoint
from provider_aws.ops.metrics import Metrics
from provider_aws.rpc.server import SocketWatch, run_server
from provider_aws.settings import Settings
from testkit.betterproto_api.v1alpha1 import CsiDriverProviderStub, MountRequest
from testkit.grpc_clients import short_socket_dir
from testkit.scrape import get

WAIT = 10.0
INTERVAL = 0.2
# Mounts fail only between the removal and the next check: a few intervals, bounded generously for a
# loaded machine (the bound is on a wait, not a measured speed).
OUTAGE_BOUND = 5.0
WORKERS = 8


class Echo:
    async def mount(self, request: MountInput) -> MountResult:
        name = json.loads(request.attributes)["name"]
        return MountResult(
            files=(MountedFile("f", 0o644, SecretBytes(name.encode())),), versions=(ObjectVersion(name, "1"),)
        )


@pytest.fixture
def settings() -> Iterator[Settings]:
    with short_socket_dir() as path:
        yield Settings(socket_dir=path, shutdown_grace=WAIT)


@asynccontextmanager
async def serving(settings: Settings, watch: SocketWatch) -> AsyncIterator[str]:
    """run_server with a short watch interval and the health endpoint; yields the endpoint's URL."""
    ready, stop = asyncio.Event(), asyncio.Event()
    async with health_endpoint("127.0.0.1:0", settings.socket_path, Metrics(), watch=watch) as health:
        assert health is not None
        task = asyncio.create_task(
            run_server(settings, Echo(), ready=ready, stop=stop, watch=watch, watch_interval=INTERVAL)
        )
        async with asyncio.timeout(WAIT):
            await ready.wait()
        try:
            host, port = health.address
            yield f"http://{host}:{port}"
        finally:
            stop.set()
            async with asyncio.timeout(WAIT):
                await task


async def mount_once(path: Path, name: str) -> bool:
    """One Mount on a new connection, as a driver that dials anew; False when it fails."""
    channel = Channel(path=str(path))
    try:
        request = MountRequest(attributes=json.dumps({"name": name}), secrets="null", target_path="/t")
        reply = await CsiDriverProviderStub(channel).mount(request, timeout=2.0)
    except (OSError, ConnectionError, TimeoutError):
        return False
    finally:
        channel.close()
    return [v.id for v in reply.object_version] == [name]


@dataclass
class Load:
    """WORKERS loops of Mounts on new connections, recording when each failed and succeeded."""

    path: Path
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ok: list[float] = field(default_factory=list)
    failed: list[float] = field(default_factory=list)

    async def worker(self, number: int) -> None:
        sequence = 0
        while not self.stop.is_set():
            sequence += 1
            succeeded = await mount_once(self.path, f"w{number}-{sequence}")
            (self.ok if succeeded else self.failed).append(time.monotonic())
            if not succeeded:
                await asyncio.sleep(0.02)

    def longest_outage(self) -> float:
        """The longest time from a failure back to the next success."""
        longest = 0.0
        for failure in self.failed:
            recovered = min((t for t in self.ok if t > failure), default=float("inf"))
            longest = max(longest, recovered - failure)
        return longest


async def wait_for(predicate: object, what: str) -> None:
    assert callable(predicate)
    async with asyncio.timeout(WAIT):
        while not predicate():  # noqa: ASYNC110 - the watch sets no event
            await asyncio.sleep(0.02)
    assert predicate(), what


def stale_socket_at(path: Path) -> None:
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(path))
    leftover.close()  # the file stays with nobody listening


@pytest.mark.asyncio
async def test_removed_and_stale_replaced_socket_is_bound_again_under_load(settings: Settings) -> None:
    watch = SocketWatch()
    path = settings.socket_path
    async with serving(settings, watch) as url:
        load = Load(path)
        workers = [asyncio.create_task(load.worker(n)) for n in range(WORKERS)]
        await wait_for(lambda: len(load.ok) >= 20, "Mounts before the removal")

        path.unlink()  # what the Go provider's pod does on exit
        await wait_for(lambda: watch.rebinds == 1, "bound again after the removal")
        served = len(load.ok)
        await wait_for(lambda: len(load.ok) >= served + 20, "Mounts after the removal")

        path.unlink()
        stale_socket_at(path)  # a crashed process's socket file in its place
        await wait_for(lambda: watch.rebinds == 2, "bound again over the stale socket")
        served = len(load.ok)
        await wait_for(lambda: len(load.ok) >= served + 20, "Mounts after the replacement")

        assert (await get(f"{url}/healthz"))[0] == 200
        assert (await get(f"{url}/readyz"))[0] == 200
        load.stop.set()
        await asyncio.gather(*workers)
    assert watch.lost is None
    assert load.longest_outage() < OUTAGE_BOUND, load.longest_outage()
    assert not path.exists()  # ours at the stop, so removed


@pytest.mark.asyncio
async def test_a_connection_open_before_the_removal_keeps_working(settings: Settings) -> None:
    watch = SocketWatch()
    async with serving(settings, watch):
        channel = Channel(path=str(settings.socket_path))
        try:
            stub = CsiDriverProviderStub(channel)
            request = MountRequest(
                attributes=json.dumps({"name": "before"}), secrets="null", target_path="/t"
            )
            await stub.mount(request, timeout=WAIT)
            settings.socket_path.unlink()
            await wait_for(lambda: watch.rebinds == 1, "bound again")
            request.attributes = json.dumps({"name": "after"})
            reply = await stub.mount(request, timeout=WAIT)
        finally:
            channel.close()
    assert [v.id for v in reply.object_version] == ["after"]


@pytest.fixture
def other() -> Iterator[socket.socket]:
    """Another process's listener (unbound until a test puts it in the provider's place)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        yield listener


def take_place(path: Path, other: socket.socket, watch: SocketWatch) -> int:
    """Remove our socket and listen on its path with `other`; the inode of their file."""
    assert watch.lost is None
    path.unlink()
    other.bind(str(path))
    other.listen(8)
    return os.lstat(path).st_ino


@pytest.mark.asyncio
async def test_a_live_listener_in_our_place_is_left_alone_and_fails_healthz(
    settings: Settings, other: socket.socket
) -> None:
    watch = SocketWatch()
    path = settings.socket_path
    async with serving(settings, watch) as url:
        take_place(path, other, watch)
        await wait_for(lambda: watch.lost is not None, "the loss noticed")
        assert "another process now serves" in str(watch.lost)
        status, text = await get(f"{url}/healthz")
        assert status == 503 and str(path) in text
        assert (await get(f"{url}/readyz"))[0] == 503
        assert watch.rebinds == 0

        # The other one goes away and removes its socket: the path is free, so it is ours again.
        other.close()
        path.unlink()
        await wait_for(lambda: watch.lost is None and watch.rebinds == 1, "bound again once free")
        assert await mount_once(path, "back")
        assert (await get(f"{url}/healthz"))[0] == 200
    assert not path.exists()


@pytest.mark.asyncio
async def test_a_socket_that_is_not_ours_survives_the_stop(settings: Settings, other: socket.socket) -> None:
    watch = SocketWatch()
    async with serving(settings, watch):
        theirs = take_place(settings.socket_path, other, watch)
        await wait_for(lambda: watch.lost is not None, "the loss noticed")
    assert os.lstat(settings.socket_path).st_ino == theirs  # still the other listener's file


@pytest.mark.asyncio
async def test_a_plain_file_in_our_place_is_left_alone(settings: Settings) -> None:
    watch = SocketWatch()
    path = settings.socket_path
    async with serving(settings, watch) as url:
        path.unlink()
        path.write_text("keep me")
        await wait_for(lambda: watch.lost is not None, "the loss noticed")
        assert "not a socket" in str(watch.lost)
        assert (await get(f"{url}/healthz"))[0] == 503
    assert path.read_text() == "keep me"
