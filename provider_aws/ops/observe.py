"""One access line per Mount, and the glue that feeds metrics from the server's hooks.

The server asks the `Observer` for an `AccessRecord` when a Mount arrives and passes that record
along the Mount explicitly (`rpc.service.MountTrace`): it reads the pod, namespace and
ServiceAccount from the request's attributes (parsed once, when the request was decoded), counts
the AWS requests of the Mount's work (one tally, entered while that work starts), takes the object
count from the answer, and writes the line with the outcome, gRPC status code and duration the
server decided on — also for Mounts that failed, ran out of time or were rejected at shutdown,
whose line also says the class of error and the message the driver was sent.

Only the pod keys of the attributes are read; nothing else of the request is logged.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import structlog
from grpclib import Status

from provider_aws.attributes import POD_NAME, POD_NAMESPACE, SERVICE_ACCOUNT
from provider_aws.aws.tally import RequestTally, tally_requests
from provider_aws.errors import CallOutcome
from provider_aws.model import MountInput, MountResult
from provider_aws.ops.metrics import Metrics
from provider_aws.rpc.service import Failure

__all__ = ["MOUNT_EVENT", "AccessRecord", "Observer"]

MOUNT_EVENT = "mount"
# Names longer than Kubernetes allows are cut: a malformed request cannot flood the log.
_MAX_NAME = 253

_log = structlog.get_logger("provider_aws.access")


def _named(document: object, key: str) -> str | None:
    """Read leniently: the access line is written for malformed requests too."""
    value = document.get(key) if isinstance(document, dict) else None
    return value[:_MAX_NAME] if isinstance(value, str) and value else None


@dataclass
class AccessRecord:
    """One Mount's access line, filled as the server passes it along the Mount (a `MountTrace`)."""

    metrics: Metrics
    pod: str | None = None
    namespace: str | None = None
    service_account: str | None = None
    objects: int | None = None
    tally: RequestTally | None = None

    @contextmanager
    def working(self, request: MountInput) -> Iterator[None]:
        document = request.attributes_json
        self.pod = _named(document, POD_NAME)
        self.namespace = _named(document, POD_NAMESPACE)
        self.service_account = _named(document, SERVICE_ACCOUNT)
        with tally_requests() as tally:
            self.tally = tally
            yield

    def answered(self, result: MountResult) -> None:
        self.objects = len(result.versions)

    def finished(self, outcome: str, status: Status, seconds: float, failure: Failure | None) -> None:
        self.metrics.finished(outcome, status, seconds)
        line: dict[str, Any] = {
            "pod": self.pod,
            "namespace": self.namespace,
            "service_account": self.service_account,
            "objects": self.objects,
            "duration_ms": round(seconds * 1000, 1),
            "outcome": str(outcome),
            "code": status.name,
            "aws_requests": self.tally.count if self.tally is not None else 0,
        }
        if failure is not None:
            # The message the driver got (it names the object, region and what to fix, never a value);
            # the log's last step masks anything token- or key-shaped in it all the same.
            line["error"] = failure.error
            line["message"] = failure.message
        if status is Status.OK:
            _log.info(MOUNT_EVENT, **line)
        else:
            _log.warning(MOUNT_EVENT, **line)


class Observer:
    """`MountObserver` and `CallObserver` in one: metrics plus the per-Mount access line."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def started(self) -> AccessRecord:
        self.metrics.started()
        return AccessRecord(self.metrics)

    def aws_call(self, service: str, operation: str, code: str, outcome: CallOutcome, seconds: float) -> None:
        self.metrics.aws_call(service, operation, code, outcome, seconds)
