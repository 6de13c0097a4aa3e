"""How many HTTP requests (retries included) one Mount sent to AWS.

Counted by a botocore `before-send` handler (`count_send`) into the tally of the enclosing
`tally_requests` block, which the tasks a Mount starts inherit through their context."""

from __future__ import annotations

import contextvars
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

__all__ = ["RequestTally", "count_send", "tally_requests"]


@dataclass
class RequestTally:
    """HTTP requests (retries included) sent to AWS within one Mount."""

    count: int = 0


_TALLY: contextvars.ContextVar[RequestTally | None] = contextvars.ContextVar("aws_tally", default=None)


@asynccontextmanager
async def tally_requests() -> AsyncIterator[RequestTally]:
    """Count the AWS requests made by the code (and tasks it starts) inside the block.

    Inside an enclosing block the enclosing tally is reused, so a Mount cut short (deadline,
    failure) still has every request it sent counted where the caller looks.
    """
    enclosing = _TALLY.get()
    if enclosing is not None:
        yield enclosing
        return
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
