"""Test helpers around the provider socket: run a server, and call it with clients other than grpclib.

- `running_provider(settings, handler)`: `run_server` in a task, ready on entry, stopped on exit.
- `GrpcioProviderClient`: a grpcio (C-core) client built from the committed FileDescriptorSet, so no
  generated grpcio code is needed. It is synchronous: call it through `asyncio.to_thread` when the server
  runs on the test's own event loop.
- `grpcurl(socket, *args)`: the grpcurl binary against the socket, using reflection only.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import grpc
from google.protobuf.message import Message

from provider_aws.rpc import messages
from provider_aws.rpc.server import run_server
from provider_aws.rpc.service import MountHandler, MountObserver
from provider_aws.settings import Settings

__all__ = [
    "GrpcioProviderClient",
    "GrpcurlResult",
    "answers_version",
    "grpcurl",
    "running_provider",
    "short_socket_dir",
    "wait_answers_version",
]

STARTUP_TIMEOUT = 10.0
SHUTDOWN_TIMEOUT = 30.0
GRPCURL_TIMEOUT = 60.0


@contextmanager
def short_socket_dir() -> Iterator[Path]:
    """A fresh directory whose socket path stays under the 107-byte AF_UNIX limit."""
    with tempfile.TemporaryDirectory(prefix="pa-", dir="/tmp") as name:
        yield Path(name) / "sockets"


@asynccontextmanager
async def running_provider(
    settings: Settings, handler: MountHandler, *, observer: MountObserver | None = None
) -> AsyncIterator[asyncio.Event]:
    """Serve `handler` on `settings.socket_path`; yields the stop event (set on exit)."""
    ready, stop = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(run_server(settings, handler, ready=ready, stop=stop, observer=observer))
    ready_wait = asyncio.create_task(ready.wait())
    done, _ = await asyncio.wait({task, ready_wait}, timeout=STARTUP_TIMEOUT, return_when="FIRST_COMPLETED")
    if ready_wait not in done:
        ready_wait.cancel()
        if task in done:
            task.result()  # raises the startup error
        task.cancel()
        raise TimeoutError("the provider did not become ready")
    try:
        yield stop
    finally:
        stop.set()
        async with asyncio.timeout(SHUTDOWN_TIMEOUT):
            await task


def grpcio_method(channel: grpc.Channel | grpc.aio.Channel, method: str, reply_type: type[Message]) -> Any:
    """A `v1alpha1.CSIDriverProvider` method on a grpcio channel (sync or aio), its messages being
    the provider's own protobuf-runtime classes (`provider_aws.rpc.messages`)."""
    return channel.unary_unary(
        f"/v1alpha1.CSIDriverProvider/{method}",
        request_serializer=lambda message: message.SerializeToString(),
        response_deserializer=reply_type.FromString,
    )


class GrpcioProviderClient:
    """`v1alpha1.CSIDriverProvider` over grpcio, dialling `unix:<path>` as the driver does."""

    def __init__(self, socket_path: Path | str) -> None:
        self._channel = grpc.insecure_channel(f"unix:{socket_path}")

    def _call(self, method: str, request: Any, reply_type: type[Message], timeout: float) -> Any:
        return grpcio_method(self._channel, method, reply_type)(request, timeout=timeout)

    def version(self, *, timeout: float = 10.0) -> Any:
        request = messages.VersionRequest(version="v1alpha1")
        return self._call("Version", request, messages.VersionResponse, timeout)

    def mount(
        self,
        *,
        attributes: str,
        secrets: str = "null",
        target_path: str = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount",
        permission: str = "420",
        current: Iterable[tuple[str, str]] = (),
        timeout: float = 10.0,
    ) -> Any:
        """A MountResponse; a failed call raises `grpc.RpcError` (see `.code()`, `.details()`)."""
        request = messages.MountRequest(
            attributes=attributes,
            secrets=secrets,
            target_path=target_path,
            permission=permission,
            current_object_version=[{"id": key, "version": value} for key, value in current],
        )
        return self._call("Mount", request, messages.MountResponse, timeout)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> GrpcioProviderClient:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        self.close()


def answers_version(socket_path: Path) -> bool:
    """Whether a provider answers Version on the socket (the Go provider serves no gRPC health service)."""
    if not socket_path.exists():
        return False
    try:
        with GrpcioProviderClient(socket_path) as client:
            client.version(timeout=2.0)
    except grpc.RpcError:
        return False
    return True


def wait_answers_version(
    process: subprocess.Popen[bytes], socket_path: Path, log: Path, name: str, within: float
) -> None:
    """Poll until the provider `process` answers Version on `socket_path`; an error with the tail of its
    `log` if it exits first or is not ready `within` seconds."""
    deadline = time.monotonic() + within
    while not answers_version(socket_path):
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-4000:]
            raise RuntimeError(f"{name} exited with {process.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            tail = log.read_text(errors="replace")[-4000:]
            raise TimeoutError(f"{name} did not answer Version in {within:.0f} s:\n{tail}")
        time.sleep(0.05)


@dataclass(frozen=True)
class GrpcurlResult:
    returncode: int
    stdout: str
    stderr: str


async def grpcurl(socket_path: Path | str, *command: str, options: Sequence[str] = ()) -> GrpcurlResult:
    """Run `grpcurl -plaintext -unix OPTIONS SOCKET COMMAND...` (e.g. `list`, `describe X`, a method)."""
    binary = Path(sys.executable).with_name("grpcurl")
    process = await asyncio.create_subprocess_exec(
        str(binary),
        "-plaintext",
        "-unix",
        *options,
        str(socket_path),
        *command,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(GRPCURL_TIMEOUT):
            out, err = await process.communicate()
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    assert process.returncode is not None
    return GrpcurlResult(process.returncode, out.decode(), err.decode())
