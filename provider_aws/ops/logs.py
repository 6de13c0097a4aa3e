"""structlog set-up: JSON (default) or console lines, with a last redaction step.

The redaction step is the guarantee behind "no secret value or token is ever logged": it runs
right before rendering, on every event, and

- replaces secret holders (SecretBytes, SecretText) wholesale, and raw bytes by their length;
- replaces the value of any field whose name says it is a credential (`token`, `password`,
  `secret`, `session_token`, `secret_access_key`, `authorization`, ...), at any depth;
- masks strings that look like credentials wherever they appear in text (messages, exception
  tracebacks, reprs of other objects): JWTs, `name=value` / `"name": "value"` pairs whose name
  holds token/secret/password/authorization/accesskey (unless it only names one, as
  `secretProviderClass` or `secret_name` do), 40-character AWS secret keys, STS session tokens;
  AWS access key IDs keep only their last four characters.

Library loggers (botocore, aiohttp, ...) go through the same redaction and renderer, at warning
level or above, so that their debug output (request headers with session tokens) is never shown.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from provider_aws.model import REDACTED, SecretBytes, SecretText

__all__ = ["REDACTED", "configure_logging", "redact", "redact_event", "redact_text"]

_MAX_DEPTH = 8
_JWT = re.compile(r"eyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*")
_PAIR = re.compile(
    r"(?i)([\w.-]{0,64}(?:authorization|token|secret|password|accesskey)[\w.-]{0,64})"
    r"(['\"]?\s*[:=]\s*(?:b?['\"])?)"
    rf"(?!{re.escape(REDACTED)})[^\s'\",}}\]]+"
)
_PAIR_WORDS = ("authorization", "token", "secret", "password", "accesskey")
_AWS_SECRET_KEY = re.compile(r"(?<![A-Za-z0-9/+=])[A-Za-z0-9/+=]{40}(?![A-Za-z0-9/+=])")
_SESSION_TOKEN = re.compile(r"(?<![A-Za-z0-9/+=])(?:IQoJ|FwoG|FQoG|AQoD)[A-Za-z0-9/+=]{40,}")
_ACCESS_KEY_ID = re.compile(r"(?<![A-Z0-9])((?:AKIA|ASIA|AIDA|AROA))[A-Z0-9]{8,}([A-Z0-9]{4})(?![A-Z0-9])")
# Field names whose value is a credential whatever it looks like.
_SECRET_NAME = re.compile(
    r"(?i)^(?:.*[_.-])?(?:token|tokens|password|passwd|secret|secrets|authorization|credentials?"
    r"|secret_?access_?key|session_?token|private_?key|api_?key)$"
)
_PLAIN = (int, float, bool, type(None))
# Names that only identify a secret (secretProviderClass, secret_name, SecretArn, ...) keep their value.
_IDENTIFIER_SUFFIXES = ("name", "class", "arn", "id", "path", "count", "type", "audience")


def _mask_pair(match: re.Match[str]) -> str:
    if match.group(1).lower().endswith(_IDENTIFIER_SUFFIXES):
        return match.group(0)
    return f"{match.group(1)}{match.group(2)}{REDACTED}"


def redact_text(text: str) -> str:
    """`text` with everything credential-shaped masked."""
    # Cheap tests first: most logged strings are short names that no pattern can match.
    if "eyJ" in text:
        text = _JWT.sub(REDACTED, text)
    lowered = text.lower()
    if any(word in lowered for word in _PAIR_WORDS):
        text = _PAIR.sub(_mask_pair, text)
    if len(text) >= 40:
        text = _SESSION_TOKEN.sub(REDACTED, text)
        text = _AWS_SECRET_KEY.sub(REDACTED, text)
    if len(text) >= 16:
        text = _ACCESS_KEY_ID.sub(lambda m: f"{m.group(1)}...{m.group(2)}", text)
    return text


def _secret_name(key: object) -> bool:
    return isinstance(key, str) and _SECRET_NAME.match(key) is not None


def redact(value: Any, depth: int = 0) -> Any:  # noqa: PLR0911 - one return per kind of value
    """A copy of `value` safe to log (plain numbers stay numbers, containers become lists/dicts)."""
    if isinstance(value, SecretBytes | SecretText):
        return REDACTED
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bytes | bytearray | memoryview):
        return f"<{len(value)} bytes>"
    if isinstance(value, str):
        return redact_text(value)
    if depth > _MAX_DEPTH:
        return REDACTED
    if isinstance(value, dict):
        return {
            redact(key, depth + 1): REDACTED if _secret_name(key) else redact(item, depth + 1)
            for key, item in value.items()
        }
    if isinstance(value, list | tuple | set | frozenset):
        return [redact(item, depth + 1) for item in value]
    # Anything else is rendered through its repr: redact that text, not the object.
    return redact_text(repr(value))


def redact_event(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """The structlog processor: must run last before the renderer."""
    for key in list(event):
        if _secret_name(key):
            event[key] = REDACTED
        else:
            event[key] = redact(event[key])
    return event


def _renderer(log_format: str) -> Any:
    if log_format == "console":
        return structlog.dev.ConsoleRenderer(colors=False)
    return structlog.processors.JSONRenderer()


def configure_logging(log_format: str = "json", level: str = "info", stream: Any = None) -> None:
    """Configure structlog and the standard library's root logger to write to `stream` (stderr)."""
    out = stream if stream is not None else sys.stderr
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    renderer = _renderer(log_format)
    shared: list[Any] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            *shared,
            structlog.processors.format_exc_info,
            redact_event,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=True,
    )
    # Other libraries' records: the same redaction and renderer, never below warning.
    handler = logging.StreamHandler(out)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                redact_event,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(max(numeric, logging.WARNING))
