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
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import structlog
from grpclib import GRPCError, Status
from grpclib.const import Cardinality, Handler

from provider_aws import DISTRIBUTION, __version__, semver
from provider_aws.errors import ProviderError
from provider_aws.model import MountInput, MountResult
from provider_aws.rpc.codec import mount_input, mount_response
from provider_aws.rpc.messages import (
    MOUNT_METHOD,
    VERSION_METHOD,
    MountRequest,
    MountResponse,
    VersionRequest,
    VersionResponse,
)

if TYPE_CHECKING:
    from grpclib.server import Stream

__all__ = [
    "API_VERSION",
    "MOUNT_METHOD",
    "Failure",
    "MountHandler",
    "MountObserver",
    "MountTrace",
    "NullObserver",
    "Outcome",
    "ProviderService",
]

API_VERSION = "v1alpha1"
# The handler's budget ends this much before the caller's deadline, so that our
# DEADLINE_EXCEEDED (with its message) reaches the driver before it gives up.
_DEADLINE_MARGIN = 0.1

_INTERNAL_MESSAGE = "internal error in the AWS provider; see the provider's logs"
_SHUTTING_DOWN_MESSAGE = "the provider is shutting down; retry the mount once it is back"
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


@dataclass(frozen=True, slots=True)
class Failure:
    """Why a Mount failed, for its access line: the error's class (a ProviderError's, or the
    server's own reason) and the message the driver was sent."""

    error: str
    message: str


class _Refusal(GRPCError):
    """The status a Mount ends with, and the class of error behind it."""

    def __init__(self, status: Status, message: str, error: str) -> None:
        super().__init__(status, message)
        self.error = error


class MountTrace(Protocol):
    """One Mount as its observer follows it, passed by the service from its arrival to its status."""

    def working(self, request: MountInput) -> AbstractContextManager[None]:
        """Entered while the handler's work is started: what it sets, the work's context inherits."""
        ...

    def answered(self, result: MountResult) -> None: ...

    def finished(self, outcome: str, status: Status, seconds: float, failure: Failure | None) -> None: ...


class MountObserver(Protocol):
    """Sees every Mount: where metrics and the access line plug in."""

    def started(self) -> MountTrace: ...


class NullObserver:
    """The default observer: follows nothing."""

    def started(self) -> MountTrace:
        return _NullTrace()


class _NullTrace:
    def working(self, request: MountInput) -> AbstractContextManager[None]:
        return nullcontext()

    def answered(self, result: MountResult) -> None:
        return None

    def finished(self, outcome: str, status: Status, seconds: float, failure: Failure | None) -> None:
        return None


def _outcome_of(status: Status) -> Outcome:
    if status is Status.DEADLINE_EXCEEDED:
        return Outcome.DEADLINE
    if status is Status.INTERNAL:
        return Outcome.INTERNAL
    return Outcome.ERROR


class ProviderService:
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

    def __mapping__(self) -> dict[str, Handler]:
        unary = Cardinality.UNARY_UNARY
        return {
            VERSION_METHOD: Handler(self._rpc_version, unary, VersionRequest, VersionResponse),
            MOUNT_METHOD: Handler(self._rpc_mount, unary, MountRequest, MountResponse),
        }

    async def _rpc_version(self, stream: Stream[Any, Any]) -> None:
        await stream.recv_message()
        await stream.send_message(
            VersionResponse(
                version=API_VERSION, runtime_name=DISTRIBUTION, runtime_version=semver(__version__)
            )
        )

    async def _rpc_mount(self, stream: Stream[Any, Any]) -> None:
        started = time.monotonic()
        trace = self._observer.started()
        if not self._accepting:
            refusal = _Refusal(
                Status.UNAVAILABLE,
                "the provider is shutting down; retry the mount once it is back",
                "ShuttingDown",
            )
            await self._finish(stream, trace, started, outcome=Outcome.REJECTED, refusal=refusal)
            return
        self._in_flight += 1
        self._idle.clear()
        try:
            await self._serve_mount(stream, trace, started)
        finally:
            self._in_flight -= 1
            if self._in_flight == 0:
                self._idle.set()

    async def _serve_mount(self, stream: Stream[Any, Any], trace: MountTrace, started: float) -> None:
        # Trailers are sent here rather than by grpclib after we return, so that a
        # Mount counts as in flight until its whole reply is written.
        try:
            message = await stream.recv_message()
            if message is None:
                raise _Refusal(
                    Status.INVALID_ARGUMENT, "the Mount call carried no request message", "ConfigError"
                )
            result = await self._call_handler(mount_input(message), self._budget(stream), trace)
            trace.answered(result)
            await stream.send_message(mount_response(result))
        except GRPCError as err:
            refusal = (
                err if isinstance(err, _Refusal) else _Refusal(err.status, str(err.message), "GRPCError")
            )
            await self._finish(stream, trace, started, outcome=_outcome_of(err.status), refusal=refusal)
            return
        except BaseException:
            # The caller went away, the server is stopping, or the stream broke.
            trace.finished(Outcome.CANCELLED, Status.CANCELLED, time.monotonic() - started, None)
            raise
        await self._finish(stream, trace, started, outcome=Outcome.OK, refusal=None)

    def _budget(self, stream: Stream[Any, Any]) -> float | None:
        if stream.deadline is None:
            return None
        return max(stream.deadline.time_remaining() - _DEADLINE_MARGIN, 0.0)

    async def _call_handler(
        self, request: MountInput, budget: float | None, trace: MountTrace
    ) -> MountResult:
        """Run the handler; `budget` None means the call had no deadline of its own."""
        seconds = self._default_timeout if budget is None else budget
        timer = asyncio.timeout(seconds)
        with trace.working(request):
            work = asyncio.ensure_future(self._handler.mount(request))
        self._work.add(work)
        try:
            async with timer:
                return await work
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if work.cancelled() and current is not None and not current.cancelling():
                # Only the work was cancelled, by abort_in_flight: the caller still gets an answer.
                raise _Refusal(Status.UNAVAILABLE, _ABORTED_MESSAGE, "ShuttingDown") from None
            raise
        except ProviderError as err:
            raise _Refusal(err.status, err.message, type(err).__name__) from None
        except TimeoutError as err:
            if not timer.expired():
                _log.exception("mount failed with an unexpected error")
                raise _Refusal(Status.INTERNAL, _INTERNAL_MESSAGE, type(err).__name__) from None
            if budget is None:
                text = f"the mount did not finish within the default mount timeout ({seconds:.1f}s)"
            else:
                text = f"the driver's deadline passed before the mount finished ({seconds:.1f}s were left)"
            raise _Refusal(Status.DEADLINE_EXCEEDED, text, "DeadlineError") from None
        except Exception as err:
            _log.exception("mount failed with an unexpected error")
            raise _Refusal(Status.INTERNAL, _INTERNAL_MESSAGE, type(err).__name__) from None
        finally:
            self._work.discard(work)

    async def _finish(
        self,
        stream: Stream[Any, Any],
        trace: MountTrace,
        started: float,
        *,
        outcome: Outcome,
        refusal: _Refusal | None,
    ) -> None:
        status = refusal.status if refusal is not None else Status.OK
        message = str(refusal.message) if refusal is not None else None
        try:
            await stream.send_trailing_metadata(status=status, status_message=message)
        finally:
            failure = Failure(refusal.error, str(refusal.message)) if refusal is not None else None
            trace.finished(outcome, status, time.monotonic() - started, failure)
