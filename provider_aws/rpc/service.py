"""The CSIDriverProvider servicer: translates between the wire and the domain, nothing more.

A Mount becomes a `MountInput` for a `MountHandler`; its `MountResult` becomes
the MountResponse. A `ProviderError` becomes a gRPC status with its message;
anything else is a bug, logged with its traceback and answered with INTERNAL
and a message that carries no request data. The handler runs under the
driver's gRPC deadline (or `default_timeout` when the call has none).
"""

from __future__ import annotations

import asyncio
import enum
import time
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from grpclib import GRPCError, Status
from grpclib.const import Handler

from provider_aws import DISTRIBUTION, __version__, semver
from provider_aws._proto.v1alpha1 import (
    CsiDriverProviderBase,
    VersionRequest,
    VersionResponse,
)
from provider_aws.errors import ProviderError
from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.codec import MountWire

if TYPE_CHECKING:
    from grpclib.server import Stream

__all__ = [
    "API_VERSION",
    "MOUNT_METHOD",
    "MountHandler",
    "MountObserver",
    "NullObserver",
    "Outcome",
    "ProviderService",
]

API_VERSION = "v1alpha1"
MOUNT_METHOD = "/v1alpha1.CSIDriverProvider/Mount"
# The handler's budget ends this much before the caller's deadline, so that our
# DEADLINE_EXCEEDED (with its message) reaches the driver before it gives up.
_DEADLINE_MARGIN = 0.1

_INTERNAL_MESSAGE = "internal error in the AWS provider; see the provider's logs"
_ABORTED_MESSAGE = "the provider stopped before this mount finished; retry the mount once it is back"

_log = structlog.get_logger(__name__)


class MountHandler(Protocol):
    async def mount(self, request: MountInput) -> MountResult: ...


class Outcome(enum.StrEnum):
    """How a Mount ended, as reported to a `MountObserver`."""

    OK = "ok"
    ERROR = "error"  # a ProviderError: the request or its data were at fault
    DEADLINE = "deadline"  # the driver's deadline (or the default timeout) passed
    INTERNAL = "internal"  # a bug in the provider
    CANCELLED = "cancelled"  # the caller went away or the server stopped
    REJECTED = "rejected"  # arrived while the server was shutting down


class MountObserver(Protocol):
    """Sees every Mount: where metrics and access logs plug in."""

    def started(self) -> None: ...

    def finished(self, outcome: str, status: Status, seconds: float) -> None: ...


class NullObserver:
    """The default observer: does nothing."""

    def started(self) -> None:
        return None

    def finished(self, outcome: str, status: Status, seconds: float) -> None:
        return None


def _outcome_of(status: Status) -> Outcome:
    if status is Status.DEADLINE_EXCEEDED:
        return Outcome.DEADLINE
    if status is Status.INTERNAL:
        return Outcome.INTERNAL
    return Outcome.ERROR


class ProviderService(CsiDriverProviderBase):
    """Version and Mount; counts Mounts in flight so that the server can drain them."""

    def __init__(
        self,
        handler: MountHandler,
        *,
        default_timeout: float,
        observer: MountObserver | None = None,
    ) -> None:
        self._handler = handler
        self._default_timeout = default_timeout
        self._observer: MountObserver = observer if observer is not None else NullObserver()
        self._accepting = True
        self._in_flight = 0
        self._idle = asyncio.Event()
        self._idle.set()
        self._work: set[asyncio.Task[MountResult]] = set()
        self.wire = MountWire()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def stop_accepting(self) -> None:
        """From now on a new Mount is refused with UNAVAILABLE (the driver retries it)."""
        self._accepting = False

    async def wait_idle(self) -> None:
        """Return once no Mount is in flight (each one's reply has been sent)."""
        await self._idle.wait()

    def abort_in_flight(self) -> None:
        """Stop the work of every Mount in flight; each caller gets UNAVAILABLE and retries."""
        for work in self._work:
            work.cancel()

    async def version(self, version_request: VersionRequest) -> VersionResponse:
        return VersionResponse(
            version=API_VERSION, runtime_name=DISTRIBUTION, runtime_version=semver(__version__)
        )

    def __mapping__(self) -> dict[str, Handler]:
        # The generated Mount entry calls `mount(request)`, which cannot see the
        # stream's deadline; route it to `_rpc_mount`, keeping the generated types.
        mapping = super().__mapping__()
        mapping[MOUNT_METHOD] = mapping[MOUNT_METHOD]._replace(func=self._rpc_mount)
        return mapping

    async def _rpc_mount(self, stream: Stream[Any, Any]) -> None:
        started = time.monotonic()
        self._observer.started()
        if not self._accepting:
            message = "the provider is shutting down; retry the mount once it is back"
            await self._finish(stream, started, Outcome.REJECTED, Status.UNAVAILABLE, message)
            return
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._serve_mount(stream, started)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _serve_mount(self, stream: Stream[Any, Any], started: float) -> None:
        # Trailers are sent here rather than by grpclib after we return, so that a
        # Mount counts as in flight until its whole reply is written.
        try:
            # A MountInput from ProviderCodec (the server uses it; see codec.py).
            request = await stream.recv_message()
            if request is None:
                raise GRPCError(Status.INVALID_ARGUMENT, "the Mount call carried no request message")
            result = await self._call_handler(request, self._budget(stream))
            await stream.send_message(self.wire.response(result))
        except GRPCError as err:
            await self._finish(stream, started, _outcome_of(err.status), err.status, err.message)
            return
        except BaseException:
            # The caller went away, the server is stopping, or the stream broke.
            self._observer.finished(Outcome.CANCELLED, Status.CANCELLED, time.monotonic() - started)
            raise
        await self._finish(stream, started, Outcome.OK, Status.OK, None)

    def _budget(self, stream: Stream[Any, Any]) -> float | None:
        if stream.deadline is None:
            return None
        return max(stream.deadline.time_remaining() - _DEADLINE_MARGIN, 0.0)

    async def _call_handler(self, request: MountInput, budget: float | None) -> MountResult:
        """Run the handler; `budget` None means the call had no deadline of its own."""
        seconds = self._default_timeout if budget is None else budget
        timer = asyncio.timeout(seconds)
        work = asyncio.ensure_future(self._handler.mount(request))
        self._work.add(work)
        try:
            async with timer:
                return await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if work.cancelled() and current is not None and not current.cancelling():
                # Only the work was cancelled, by abort_in_flight: the caller still gets an answer.
                raise GRPCError(Status.UNAVAILABLE, _ABORTED_MESSAGE) from None
            raise
        except ProviderError as err:
            raise GRPCError(err.status, err.message) from None
        except TimeoutError:
            if not timer.expired():
                _log.exception("mount failed with an unexpected error")
                raise GRPCError(Status.INTERNAL, _INTERNAL_MESSAGE) from None
            if budget is None:
                text = f"the mount did not finish within the default mount timeout ({seconds:.1f}s)"
            else:
                text = f"the driver's deadline passed before the mount finished ({seconds:.1f}s were left)"
            raise GRPCError(Status.DEADLINE_EXCEEDED, text) from None
        except Exception:
            _log.exception("mount failed with an unexpected error")
            raise GRPCError(Status.INTERNAL, _INTERNAL_MESSAGE) from None
        finally:
            self._work.discard(work)

    async def _finish(
        self,
        stream: Stream[Any, Any],
        started: float,
        outcome: Outcome,
        status: Status,
        message: str | None,
    ) -> None:
        try:
            await stream.send_trailing_metadata(status=status, status_message=message)
        finally:
            self._observer.finished(outcome, status, time.monotonic() - started)
