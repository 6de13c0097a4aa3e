"""The `csi.storage.k8s.io/serviceAccount.tokens` attribute: audience -> service account token.

Kubelet fills it in when the CSIDriver object has `tokenRequests`:
`{"sts.amazonaws.com": {"token": "<JWT>", "expirationTimestamp": "<RFC3339>"}, ...}`.
Tokens are wrapped in SecretText at once, and no message here ever quotes one.
"""

from __future__ import annotations

import json

from provider_aws.attributes import TOKENS
from provider_aws.model import SecretText

__all__ = ["TokenError", "parse_tokens"]


class TokenError(ValueError):
    """The attribute is malformed; the message names the audience, never a token."""


def parse_tokens(value: str | None) -> tuple[tuple[str, SecretText], ...] | None:
    """Audience -> token pairs in attribute order; None when kubelet sent no tokens."""
    if value is None or value.strip() == "":
        return None
    try:
        document = json.loads(value)
    except (ValueError, RecursionError):
        # The decoder's message may quote the document, which holds tokens: say only where.
        raise TokenError(f"{TOKENS} is not valid JSON") from None
    if not isinstance(document, dict):
        raise TokenError(f"{TOKENS} must be a JSON object of audience -> token")
    tokens: list[tuple[str, SecretText]] = []
    for audience, entry in document.items():
        if not isinstance(entry, dict):
            raise TokenError(f"{TOKENS}: the entry for audience {audience!r} must be an object")
        token = entry.get("token")
        if not isinstance(token, str):
            raise TokenError(f'{TOKENS}: the entry for audience {audience!r} has no string "token"')
        tokens.append((audience, SecretText(token)))
    return tuple(tokens)
