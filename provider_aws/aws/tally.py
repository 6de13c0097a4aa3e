"""How many HTTP requests (retries included) one Mount sent to AWS.

Counted by a botocore `before-send` handler (`count_send`) into the tally of the enclosing
`tally_requests` block, which the tasks a Mount starts inherit through their context."""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["RequestTally", "count_send", "tally_requests"]


@dataclass
class RequestTally:
    """HTTP requests (retries included) sent to AWS within one Mount."""

    count: int = 0


_TALLY: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar("aws_tally", default=None)


@contextmanager
def tally_requests() -> Iterator[RequestTally]:
    """Count the AWS requests of the tasks started inside the block (they copy its context), until
    they end: a Mount's work task is started inside one, once per Mount, by its access record."""
    tally = RequestTally()
    token = _TALLY.set(tally)
    try:
        yield tally
    finally:
        _TALLY.reset(token)


def count_send(**_: Any) -> None:
    """botocore `before-send` handler of every client."""
    tally = _TALLY.get()
    if tally is not None:
        tally.count += 1
