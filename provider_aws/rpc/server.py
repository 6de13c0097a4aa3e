"""The provider's Unix socket: hygiene, serving, graceful shutdown.

Serves `v1alpha1.CSIDriverProvider`, `grpc.health.v1.Health` and server
reflection. The socket is bound under umask 0o077 and then opened to mode
0600 at most; a stale socket is replaced, anything else at the path is left
alone and refused. On stop the socket is unlinked (no new connections), new
Mounts on open connections are refused with UNAVAILABLE, health turns
NOT_SERVING, and Mounts in flight get `settings.shutdown_grace` to finish.

While serving, the socket path is checked every second: a socket removed (the Go provider's pod
removes `aws.sock` when it exits, even after its successor bound it) or replaced by a stale one is
bound again; one taken by another live listener, or by a file that is not a socket, is left alone
and reported through `SocketWatch.lost`, which fails `/healthz` so that the kubelet restarts us.
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
    "SocketWatch",
    "prepare_socket_path",
    "run_server",
    "serve_until_signal",
]

SOCKET_MODE = 0o600
# How long to wait for a listener at an existing socket before calling it live.
_PROBE_TIMEOUT = 1.0
# After the grace period, how long cancelled handlers get to unwind.
_CLOSE_TIMEOUT = 5.0
# How often the socket path is checked for removal or replacement while serving.
WATCH_INTERVAL = 1.0

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


def _remove_socket(path: Path, identity: tuple[int, int] | None) -> None:
    """Unlink our socket, but not a file someone else has put there since."""
    if _is_ours(path, identity):
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
        self._rebound: list[asyncio.AbstractServer] = []

    async def listen_again(self, sock: socket.socket) -> None:
        """Also accept calls on `sock` (the socket bound again after ours was removed)."""
        loop = asyncio.get_running_loop()
        self._rebound.append(await loop.create_unix_server(self._protocol_factory, sock=sock))

    def close(self) -> None:
        for listener in self._rebound:
            listener.close()
        super().close()

    async def wait_closed(self) -> None:
        for listener in self._rebound:
            await listener.wait_closed()
        await super().wait_closed()

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


class SocketWatch:
    """Whether the socket path is still this process's; `lost` says why not when it cannot be taken back."""

    def __init__(self) -> None:
        self.identity: tuple[int, int] | None = None  # (device, inode) of the socket file we bound
        self.lost: str | None = None
        self.rebinds = 0


def _lose(watch: SocketWatch, reason: str) -> None:
    if watch.lost != reason:
        _log.error("the provider socket is no longer ours", reason=reason)
    watch.lost = reason


def _is_ours(path: Path, identity: tuple[int, int] | None) -> bool:
    """The socket file at `path` is the one we bound (`identity` is its device and inode)."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISSOCK(info.st_mode) and (info.st_dev, info.st_ino) == identity


async def _obstacle(path: Path) -> str | None:
    """Why `path` cannot be bound now; None once it is free (a stale socket there is removed)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"cannot check the socket {path}: {_reason(err)}"
    if not stat.S_ISSOCK(info.st_mode):
        return f"{path} was replaced by a file that is not a socket; it is left alone"
    try:
        if await _has_listener(path):
            return f"another process now serves on {path}; it is left alone"
    except SocketError as err:
        return err.message
    _remove_stale(path)
    return None


async def _reclaim(server: _Server, path: Path, watch: SocketWatch) -> None:
    """Bind `path` again if our socket there was removed or replaced by a stale one."""
    if _is_ours(path, watch.identity):
        return
    obstacle = await _obstacle(path)
    if obstacle is not None:
        _lose(watch, obstacle)
        return
    _log.warning("the provider socket was removed or replaced; binding it again", socket=str(path))
    try:
        sock, identity = _bind(path)
    except SocketError as err:
        _lose(watch, err.message)
        return
    try:
        await server.listen_again(sock)
    except OSError as err:
        sock.close()
        _remove_socket(path, identity)
        _lose(watch, f"cannot listen on {path} again: {_reason(err)}")
        return
    watch.identity, watch.lost = identity, None
    watch.rebinds += 1
    _log.info("serving again", socket=str(path))


async def _keep_socket(server: _Server, path: Path, watch: SocketWatch, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        await _reclaim(server, path, watch)


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
    watch: SocketWatch | None = None,
    watch_interval: float = WATCH_INTERVAL,
) -> None:
    """Serve on `settings.socket_path` until `stop` is set (or the task is cancelled).

    Raises `SocketError` (a `SocketInUseError` when the path is occupied) before
    serving. `ready` is set once the socket accepts calls. A stop drains Mounts
    in flight for up to `settings.shutdown_grace`; a cancellation does not wait.
    `watch` tells whether the socket path is still ours (see the module's doc).
    """
    watch = watch if watch is not None else SocketWatch()
    path = settings.socket_path
    await prepare_socket_path(path)
    service = ProviderService(handler, default_timeout=settings.default_mount_timeout, observer=observer)
    serving = ServiceStatus()
    server = _Server(with_reflection([service, Health({service: [serving]})]), codec=ProviderCodec())
    sock, watch.identity = _bind(path)
    try:
        await server.start(sock=sock)
    except BaseException:
        sock.close()
        _remove_socket(path, watch.identity)
        raise
    keeper = asyncio.create_task(_keep_socket(server, path, watch, watch_interval))
    try:
        serving.set(True)
        _log.info("serving", socket=str(path))
        if ready is not None:
            ready.set()
        await (stop.wait() if stop is not None else asyncio.get_running_loop().create_future())
        _log.info("stopping", in_flight=service.in_flight, grace_seconds=settings.shutdown_grace)
        keeper.cancel()
        serving.set(False)
        service.stop_accepting()
        _remove_socket(path, watch.identity)
        await _drain(service, settings.shutdown_grace)
    finally:
        keeper.cancel()
        serving.set(False)
        service.stop_accepting()
        _remove_socket(path, watch.identity)
        await _close(server)
        _log.info("stopped", socket=str(path))


async def serve_until_signal(
    settings: Settings,
    handler: MountHandler,
    *,
    ready: asyncio.Event | None = None,
    observer: MountObserver | None = None,
    watch: SocketWatch | None = None,
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
        await run_server(settings, handler, ready=ready, stop=stop, observer=observer, watch=watch)
    finally:
        for signum in signals:
            loop.remove_signal_handler(signum)
