"""One exception family; each class carries the gRPC status it maps to.

Messages are shown to users (the driver copies them into pod events), so they
say what to fix and never contain a secret value or a token.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import ClassVar

from grpclib import Status

__all__ = [
    "AccessDeniedError",
    "ConfigError",
    "DeadlineError",
    "NotFoundError",
    "PreconditionError",
    "ProviderError",
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


class DeadlineError(ProviderError):
    status = Status.DEADLINE_EXCEEDED
