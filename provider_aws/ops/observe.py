"""One access line per Mount, and the glue that feeds metrics from the server's hooks.

The server calls `MountObserver.started` and `.finished` in the task that serves the Mount,
and awaits the handler in that same task, so a context variable set in `started` is the
Mount's own record: the handler wrapper (`LoggedHandler`) adds the pod, namespace,
ServiceAccount, object and AWS request counts to it, and `finished` writes the line with the
outcome, gRPC status code and duration the server decided on — also for Mounts that failed,
ran out of time or were rejected at shutdown.

Only the pod keys of the attributes JSON are read; nothing else of the request is logged.
"""

from __future__ import annotations

import contextvars
import json
from dataclasses import dataclass
from typing import Any

import structlog
from grpclib import Status

from provider_aws.attributes import POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT
from provider_aws.aws.tally import RequestTally, tally_requests
from provider_aws.model import MountInput, MountResult
from provider_aws.ops.metrics import Metrics
from provider_aws.rpc.service import MountHandler

__all__ = ["MOUNT_EVENT", "LoggedHandler", "MountRecord", "Observer"]

MOUNT_EVENT = "mount"
# Names longer than Kubernetes allows are cut: a malformed request cannot flood the log.
_MAX_NAME = 253

_log = structlog.get_logger("provider_aws.access")


@dataclass
class MountRecord:
    """What one Mount's access line says beyond outcome, status and duration."""

    pod: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    objects: int | None = None
    # The Mount's AWS request count; the Mounter's own tally joins this one, so a Mount cut
    # short by its deadline or a failure still shows every request it sent.
    tally: RequestTally | None = None


_RECORD: contextvars.ContextVar[MountRecord | None] = contextvars.ContextVar("mount_record", default=None)


def _record_pod(record: MountRecord, attributes: str) -> None:
    """Who the Mount is for, read leniently: the access line is written for malformed requests too."""
    try:
        parsed: Any = json.loads(attributes)
    except (ValueError, RecursionError):
        return
    if not isinstance(parsed, dict):
        return

    def named(key: str) -> str | None:
        value = parsed.get(key)
        return value[:_MAX_NAME] if isinstance(value, str) and value else None

    record.pod = named(POD_NAME)
    record.namespace = named(POD_NAMESPACE)
    record.service_account = named(SERVICE_ACCOUNT)


@dataclass
class LoggedHandler:
    """A `MountHandler` that fills the current Mount's record around the real handler."""

    handler: MountHandler

    async def mount(self, request: MountInput) -> MountResult:
        record = _RECORD.get()
        if record is None:  # called outside the server (no observer): nothing to record
            return await self.handler.mount(request)
        _record_pod(record, request.attributes)
        async with tally_requests() as tally:
            record.tally = tally
            result = await self.handler.mount(request)
        record.objects = len(result.versions)
        return result


class Observer:
    """`MountObserver` and `CallObserver` in one: metrics plus the per-Mount access line."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def started(self) -> None:
        _RECORD.set(MountRecord())
        self.metrics.started()

    def finished(self, outcome: str, status: Status, seconds: float) -> None:
        self.metrics.finished(outcome, status, seconds)
        record = _RECORD.get() or MountRecord()
        _RECORD.set(None)
        requests = record.tally.count if record.tally is not None else 0
        line: dict[str, Any] = {
            "pod": record.pod,
            "namespace": record.namespace,
            "service_account": record.service_account,
            "objects": record.objects,
            "duration_ms": round(seconds * 1000, 1),
            "outcome": str(outcome),
            "code": status.name,
            "aws_requests": requests,
        }
        if status is Status.OK:
            _log.info(MOUNT_EVENT, **line)
        else:
            _log.warning(MOUNT_EVENT, **line)

    def aws_call(self, service: str, operation: str, outcome: str) -> None:
        self.metrics.aws_call(service, operation, outcome)

    def wrap(self, handler: MountHandler) -> LoggedHandler:
        return LoggedHandler(handler)
