"""`/healthz`, `/readyz` and `/metrics` over HTTP (aiohttp), on `--http-addr`.

- `/readyz`: 200 once the provider socket accepts calls and its gRPC health Check answers
  SERVING; 503 before that, while shutting down, and after.
- `/healthz` (liveness): 200 when the event loop runs this handler and, if the socket exists,
  a health Check over it completes (any answer: NOT_SERVING while draining is still alive).
  A socket that exists but does not answer is a wedged provider: 503. So is a socket path that
  another process has taken and the provider cannot take back (`SocketWatch.lost`): the kubelet
  restarts it, and the restarted provider binds once the path is free.
- `/metrics`: the `Metrics` registry in the Prometheus text format.

Every Check dials the socket as the driver does and is bounded by `check_timeout`.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from grpclib.client import Channel
from grpclib.health.v1.health_grpc import HealthStub
from grpclib.health.v1.health_pb2 import HealthCheckRequest, HealthCheckResponse
from prometheus_client import CONTENT_TYPE_LATEST

from provider_aws.errors import ProviderError
from provider_aws.ops.metrics import Metrics
from provider_aws.rpc.server import SocketWatch

__all__ = [
    "CheckResult",
    "HealthServer",
    "HttpEndpointError",
    "check_socket",
    "health_endpoint",
    "parse_http_addr",
]

_log = structlog.get_logger(__name__)
DEFAULT_CHECK_TIMEOUT = 2.0


class HttpEndpointError(ProviderError):
    """`--http-addr` is malformed or cannot be listened on."""


def parse_http_addr(addr: str) -> tuple[str, int]:
    """`HOST:PORT`, `[V6]:PORT` or `:PORT` (all interfaces) as (host, port)."""
    host, sep, port_text = addr.rpartition(":")
    if not sep or not port_text.isdigit() or int(port_text) > 65535:
        raise HttpEndpointError(f"--http-addr {addr!r} is not HOST:PORT (empty disables the endpoint)")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    return host or "0.0.0.0", int(port_text)  # ":PORT": all interfaces


class CheckResult:
    """The outcome of one health Check over the socket."""

    def __init__(self, answered: bool, serving: bool, detail: str) -> None:
        self.answered = answered
        self.serving = serving
        self.detail = detail


def socket_exists(path: Path) -> bool:
    """A socket file is at `path` (a local stat: never blocks for long)."""
    return path.is_socket()


async def check_socket(path: Path, limit: float = DEFAULT_CHECK_TIMEOUT) -> CheckResult:
    """Call grpc.health.v1.Health/Check (the whole server) over the Unix socket at `path`."""
    if not socket_exists(path):
        return CheckResult(False, False, "the provider socket does not exist")
    channel = Channel(path=str(path))
    try:
        async with asyncio.timeout(limit):
            reply = await HealthStub(channel).Check(HealthCheckRequest())
    except TimeoutError:
        return CheckResult(False, False, f"no health answer over the socket within {limit:.1f}s")
    except (OSError, ConnectionError) as error:
        return CheckResult(False, False, f"cannot reach the provider socket: {type(error).__name__}")
    except Exception as error:  # a GRPCError or a broken stream: the socket answered badly
        return CheckResult(False, False, f"health check failed: {type(error).__name__}")
    finally:
        channel.close()
    if reply is None:
        return CheckResult(False, False, "empty health answer")
    name = HealthCheckResponse.ServingStatus.Name(reply.status)
    return CheckResult(True, reply.status == HealthCheckResponse.SERVING, name)


class HealthServer:
    """The HTTP endpoint; `start()` binds (port 0 picks a free port), `address` tells the real one."""

    def __init__(
        self,
        addr: str,
        socket_path: Path,
        metrics: Metrics,
        *,
        check_timeout: float = DEFAULT_CHECK_TIMEOUT,
        watch: SocketWatch | None = None,
    ) -> None:
        self._host, self._port = parse_http_addr(addr)
        self._socket_path = socket_path
        self._watch = watch
        self._metrics = metrics
        self._check_timeout = check_timeout
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/readyz", self._readyz)
        app.router.add_get("/metrics", self._metrics_page)
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self._address: tuple[str, int] | None = None

    @property
    def address(self) -> tuple[str, int]:
        """(host, port) actually bound."""
        if self._address is None:
            raise RuntimeError("the HTTP endpoint is not started")
        return self._address

    async def start(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port, reuse_address=True)
        try:
            await site.start()
        except OSError as error:
            await self._runner.cleanup()
            text = f"cannot listen on {self._host}:{self._port} for /healthz: {error.strerror or error}"
            raise HttpEndpointError(text) from None
        # The listening sockets' own names: with port 0, the port the system picked.
        addresses: list[Any] = list(self._runner.addresses)
        bound = addresses[0] if addresses else (self._host, self._port)
        self._address = (str(bound[0]), int(bound[1]))
        _log.info("http endpoint listening", host=self._address[0], port=self._address[1])

    async def stop(self) -> None:
        await self._runner.cleanup()

    async def _healthz(self, _request: web.Request) -> web.Response:
        if self._watch is not None and self._watch.lost:
            return web.Response(status=503, text=f"not alive: {self._watch.lost}\n")
        if not socket_exists(self._socket_path):
            return web.Response(text="ok: alive (socket not open)\n")
        result = await check_socket(self._socket_path, self._check_timeout)
        if result.answered:
            return web.Response(text=f"ok: alive ({result.detail})\n")
        return web.Response(status=503, text=f"not alive: {result.detail}\n")

    async def _readyz(self, _request: web.Request) -> web.Response:
        if self._watch is not None and self._watch.lost:
            return web.Response(status=503, text=f"not ready: {self._watch.lost}\n")
        result = await check_socket(self._socket_path, self._check_timeout)
        if result.serving:
            return web.Response(text="ok: ready\n")
        return web.Response(status=503, text=f"not ready: {result.detail}\n")

    async def _metrics_page(self, _request: web.Request) -> web.Response:
        response = web.Response(body=self._metrics.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response


@asynccontextmanager
async def health_endpoint(
    addr: str,
    socket_path: Path,
    metrics: Metrics,
    *,
    check_timeout: float = DEFAULT_CHECK_TIMEOUT,
    watch: SocketWatch | None = None,
) -> AsyncIterator[HealthServer | None]:
    """The HTTP endpoint while the block runs; None (nothing served) when `addr` is empty."""
    if not addr:
        yield None
        return
    server = HealthServer(addr, socket_path, metrics, check_timeout=check_timeout, watch=watch)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
