"""The provider's own logging configuration, for tests that reconfigure it between runs."""

from __future__ import annotations

from typing import Any

import structlog

from provider_aws.ops.logs import configure_logging

__all__ = ["configure_test_logging"]


def configure_test_logging(log_format: str, level: str, stream: Any) -> None:
    """`configure_logging` into `stream`, with module loggers left unbound from it (no caching on
    first use), so that the next test's configuration reaches them."""
    configure_logging(log_format, level, stream)
    structlog.configure(cache_logger_on_first_use=False)
