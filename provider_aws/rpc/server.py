"""The provider's Unix socket: hygiene, serving, graceful shutdown.

Serves `v1alpha1.CSIDriverProvider`, `grpc.health.v1.Health` and server
reflection. The socket is bound under umask 0o077 and then opened to mode
0600 at most; a stale socket is replaced, anything else at the path is left
alone and refused. On stop the socket is unlinked (no new connections), new
Mounts on open connections are refused with UNAVAILABLE, health turns
NOT_SERVING, and Mounts in flight get `settings.shutdown_grace` to finish.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import stat
import weakref
from collections.abc import Collection
from pathlib import Path
from typing import TYPE_CHECKING

import structlog
from grpclib import Status
from grpclib.encoding.base import CodecBase
from grpclib.health.check import ServiceStatus
from grpclib.health.service import Health
from grpclib.server import Server

from provider_aws.errors import ProviderError
from provider_aws.rpc.codec import ProviderCodec
from provider_aws.rpc.h2limits import BoundedH2Protocol
from provider_aws.rpc.reflection import with_reflection
from provider_aws.rpc.service import MountHandler, MountObserver, ProviderService
from provider_aws.settings import Settings

if TYPE_CHECKING:
    from grpclib._typing import IServable
    from grpclib.protocol import H2Protocol

__all__ = [
    "SOCKET_MODE",
    "SocketError",
    "SocketInUseError",
    "prepare_socket_path",
    "run_server",
    "serve_until_signal",
]

SOCKET_MODE = 0o600
# How long to wait for a listener at an existing socket before calling it live.
_PROBE_TIMEOUT = 1.0
# After the grace period, how long cancelled handlers get to unwind.
_CLOSE_TIMEOUT = 5.0

# sun_path holds 108 bytes on Linux, including the terminating NUL.
_MAX_PATH_BYTES = 108

_log = structlog.get_logger(__name__)


def _reason(err: OSError) -> str:
    return err.strerror or str(err)


class SocketError(ProviderError):
    """The provider socket cannot be created."""

    status = Status.FAILED_PRECONDITION


class SocketInUseError(SocketError):
    """Something that must not be removed already occupies the socket path."""


async def _has_listener(path: Path) -> bool:
    try:
        async with asyncio.timeout(_PROBE_TIMEOUT):
            _, writer = await asyncio.open_unix_connection(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except TimeoutError:
        return True  # a listener whose backlog is full is still a listener
    except OSError as err:
        raise SocketError(f"cannot check whether {path} is in use: {_reason(err)}") from None
    writer.close()
    await writer.wait_closed()
    return True


def _existing_socket(path: Path) -> bool:
    """Create the socket's directory; True when a socket file is already at `path`."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as err:
        raise SocketError(f"cannot prepare the socket directory {path.parent}: {_reason(err)}") from None
    if not stat.S_ISSOCK(info.st_mode):
        raise SocketInUseError(f"{path} exists and is not a socket; remove it or choose another --socket-dir")
    return True


def _remove_stale(path: Path) -> None:
    _log.info("removing stale socket", socket=str(path))
    path.unlink(missing_ok=True)


async def prepare_socket_path(path: Path) -> None:
    """Create the socket's directory; remove a stale socket; refuse anything else."""
    if not _existing_socket(path):
        return
    if await _has_listener(path):
        raise SocketInUseError(
            f"another process is serving on {path}; stop it or choose another --socket-dir"
        )
    _remove_stale(path)


def _bind(path: Path) -> tuple[socket.socket, tuple[int, int]]:
    """A bound (not yet listening) socket and the (device, inode) of its file."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    bound = False
    try:
        # No await in between: the process-wide umask is tightened only around bind().
        previous = os.umask(0o077)
        try:
            sock.bind(str(path))
            bound = True
        finally:
            os.umask(previous)
        os.chmod(path, SOCKET_MODE)
        info = os.stat(path)
    except OSError as err:
        sock.close()
        if bound:
            path.unlink(missing_ok=True)
        hint = ""
        if len(os.fsencode(path)) >= _MAX_PATH_BYTES:
            hint = f"; socket paths must be under {_MAX_PATH_BYTES} bytes, choose a shorter --socket-dir"
        raise SocketError(f"cannot create the socket {path}: {_reason(err)}{hint}") from None
    return sock, (info.st_dev, info.st_ino)


def _remove_socket(path: Path, identity: tuple[int, int]) -> None:
    """Unlink our socket, but not a file someone else has put there since."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISSOCK(info.st_mode) and (info.st_dev, info.st_ino) == identity:
        path.unlink(missing_ok=True)


async def _drain(service: ProviderService, grace: float) -> None:
    try:
        async with asyncio.timeout(grace):
            await service.wait_idle()
    except TimeoutError:
        _log.warning("shutdown grace period passed; cancelling mounts in flight", in_flight=service.in_flight)
        service.abort_in_flight()
        try:
            # Each aborted Mount still sends its UNAVAILABLE status before connections close.
            async with asyncio.timeout(_CLOSE_TIMEOUT):
                await service.wait_idle()
        except TimeoutError:
            _log.warning("mounts did not unwind in time", in_flight=service.in_flight)


class _Server(Server):
    """grpclib's Server, remembering its connections so that a stop can close them.

    grpclib's own close() cancels handlers but leaves client connections open;
    the driver would only notice at process exit. Hooks `_protocol_factory`,
    which is private to grpclib (pinned below 0.5 in pyproject.toml), also to
    bound each connection's HTTP/2 bookkeeping (`h2limits`).
    """

    def __init__(self, handlers: Collection[IServable], codec: CodecBase) -> None:
        super().__init__(handlers, codec=codec)
        self._connections: weakref.WeakSet[H2Protocol] = weakref.WeakSet()

    def _protocol_factory(self) -> H2Protocol:
        made = super()._protocol_factory()
        protocol = BoundedH2Protocol(made.handler, made.config, made.h2_config)
        self._connections.add(protocol)
        return protocol

    def close_connections(self) -> None:
        for protocol in list(self._connections):
            connection = getattr(protocol, "connection", None)  # absent until connection_made
            if connection is not None:
                connection.close()


async def _close(server: _Server) -> None:
    server.close()
    server.close_connections()
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await server.wait_closed()
    except TimeoutError:
        _log.warning("gRPC server did not close in time")


async def run_server(
    settings: Settings,
    handler: MountHandler,
    *,
    ready: asyncio.Event | None = None,
    stop: asyncio.Event | None = None,
    observer: MountObserver | None = None,
) -> None:
    """Serve on `settings.socket_path` until `stop` is set (or the task is cancelled).

    Raises `SocketError` (a `SocketInUseError` when the path is occupied) before
    serving. `ready` is set once the socket accepts calls. A stop drains Mounts
    in flight for up to `settings.shutdown_grace`; a cancellation does not wait.
    """
    path = settings.socket_path
    await prepare_socket_path(path)
    service = ProviderService(handler, default_timeout=settings.default_mount_timeout, observer=observer)
    serving = ServiceStatus()
    server = _Server(
        with_reflection([service, Health({service: [serving]})]), codec=ProviderCodec(service.wire)
    )
    sock, identity = _bind(path)
    try:
        await server.start(sock=sock)
    except BaseException:
        sock.close()
        _remove_socket(path, identity)
        raise
    try:
        serving.set(True)
        _log.info("serving", socket=str(path))
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.get_running_loop().create_future())
        _log.info("stopping", in_flight=service.in_flight, grace_seconds=settings.shutdown_grace)
        serving.set(False)
        service.stop_accepting()
        _remove_socket(path, identity)
        await _drain(service, settings.shutdown_grace)
    finally:
        serving.set(False)
        service.stop_accepting()
        _remove_socket(path, identity)
        await _close(server)
        _log.info("stopped", socket=str(path))


async def serve_until_signal(
    settings: Settings,
    handler: MountHandler,
    *,
    ready: asyncio.Event | None = None,
    observer: MountObserver | None = None,
    signals: Collection[signal.Signals] = (signal.SIGTERM, signal.SIGINT),
) -> None:
    """`run_server` until the first of `signals` arrives, then shut down gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal(signum: signal.Signals) -> None:
        if stop.is_set():
            _log.info("already shutting down", signal=signum.name)
        else:
            _log.info("shutdown requested", signal=signum.name)
            stop.set()

    for signum in signals:
        loop.add_signal_handler(signum, on_signal, signum)
    try:
        await run_server(settings, handler, ready=ready, stop=stop, observer=observer)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
