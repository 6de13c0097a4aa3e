"""structlog set-up: JSON (default) or console lines, with a last redaction step.

The redaction step is the guarantee behind "no secret value or token is ever logged": secret
holders (SecretBytes, SecretText) are replaced wholesale, and strings that look like credentials
(JWTs, AWS secret keys, session tokens) are masked, wherever they appear in an event.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from provider_aws.model import SecretBytes, SecretText

__all__ = ["REDACTED", "configure_logging", "redact", "redact_event"]

REDACTED = "[redacted]"
_PATTERNS = (
    re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*"),  # JWT
    re.compile(r"(?i)(authorization|token|secret|password)(\"?\s*[:=]\s*\"?)[^\s\",}]+"),
    re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])"),  # AWS secret access key shape
    re.compile(r"(?<![A-Za-z0-9/+=])(?:IQoJ|FwoG|AQoD)[A-Za-z0-9/+=]{40,}"),  # session tokens
)


def redact(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind of value
    if isinstance(value, SecretBytes | SecretText):
        return REDACTED
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        text = _PATTERNS[0].sub(REDACTED, value)
        text = _PATTERNS[1].sub(lambda m: f"{m.group(1)}{m.group(2)}{REDACTED}", text)
        text = _PATTERNS[2].sub(REDACTED, text)
        return _PATTERNS[3].sub(REDACTED, text)
    if depth > 8:
        return REDACTED
    if isinstance(value, dict):
        return {key: redact(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, depth + 1) for item in value]
    return value


def redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key in list(event):
        event[key] = redact(event[key])
    return event


def configure_logging(log_format: str = "json", level: str = "info") -> None:
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer: Any
    if log_format == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=False)
    else:
        renderer = structlog.processors.JSONRenderer()
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )
