"""One exception family; each class carries the gRPC status it maps to.

Messages are shown to users (the driver copies them into pod events), so they
say what to fix and never contain a secret value or a token.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from typing import ClassVar

from grpclib import Status

__all__ = [
    "AccessDeniedError",
    "CallOutcome",
    "ConfigError",
    "DeadlineError",
    "NotFoundError",
    "PreconditionError",
    "ProviderError",
    "ThrottledError",
    "UnavailableError",
]


class ProviderError(Exception):
    """An expected failure of a Mount; anything else raised is a bug (INTERNAL)."""

    status: ClassVar[Status] = Status.INTERNAL

    @property
    def message(self) -> str:
        return str(self)


class ConfigError(ProviderError):
    """The request or SecretProviderClass is malformed; lists every problem found."""

    status = Status.INVALID_ARGUMENT

    def __init__(self, problems: Iterable[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems) or ("invalid request",)
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            text = f"{len(self.problems)} problems: " + "; ".join(self.problems)
        super().__init__(text)


class PreconditionError(ProviderError):
    """Well-formed request, but the cluster or data is not as it must be."""

    status = Status.FAILED_PRECONDITION


class NotFoundError(ProviderError):
    status = Status.NOT_FOUND


class AccessDeniedError(ProviderError):
    status = Status.PERMISSION_DENIED


class UnavailableError(ProviderError):
    """A retry may fix it: network trouble, 5xx, throttling left after retries."""

    status = Status.UNAVAILABLE


class ThrottledError(UnavailableError):
    """A quota was exceeded (HTTP 429, an AWS throttling code) and retries did not get through."""


class DeadlineError(ProviderError):
    status = Status.DEADLINE_EXCEEDED


class CallOutcome(enum.StrEnum):
    """How one call to AWS, STS, the Pod Identity agent or Kubernetes ended: the `outcome` label
    of their metrics, a small fixed set."""

    OK = "ok"
    THROTTLED = "throttled"
    DENIED = "denied"
    ERROR = "error"

    @classmethod
    def of_http(cls, status: int | None) -> CallOutcome:
        """An HTTP answer's class; None: no answer came back."""
        if status is not None and 200 <= status < 300:
            return cls.OK
        if status == 429:
            return cls.THROTTLED
        if status in (401, 403):
            return cls.DENIED
        return cls.ERROR

    @classmethod
    def of_error(cls, error: BaseException) -> CallOutcome:
        if isinstance(error, ThrottledError):
            return cls.THROTTLED
        if isinstance(error, AccessDeniedError):
            return cls.DENIED
        return cls.ERROR
