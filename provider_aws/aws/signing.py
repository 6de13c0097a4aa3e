"""Signing a request of a shared client with its caller's credentials.

There is one client per (service, region), shared by every identity. Credentials travel with the
call instead: `signing_as` puts the caller's keys in a context variable of its own task, and the
`before-sign` handler `sign_as_caller` hands them to botocore as that request's
`request_credentials`. A botocore client costs noticeable memory and CPU to build, so a client per
pod identity made memory and cold Mounts grow with the number of ServiceAccounts on the node.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from aiobotocore.credentials import AioCredentials

from provider_aws.aws.caller import Credentials

__all__ = ["PLACEHOLDER_KEY", "sign_as_caller", "signing_as"]

_SIGN_AS: contextvars.ContextVar[AioCredentials | None] = contextvars.ContextVar("aws_sign_as", default=None)
# Keys a shared client is built with so that botocore never looks for ambient credentials
# (environment, instance metadata). Nothing is ever signed with them: see `sign_as_caller`.
PLACEHOLDER_KEY = "PROVIDER-AWS-NO-AMBIENT-CREDENTIALS"


def sign_as_caller(request: Any, **_: Any) -> None:
    """botocore `before-sign` handler of every signed client."""
    credentials = _SIGN_AS.get()
    if credentials is None:
        raise RuntimeError("an AWS request was about to be signed outside AwsClients.call")
    # A new dict: the one botocore put there may be shared with other requests.
    request.context["signing"] = {**request.context.get("signing", {}), "request_credentials": credentials}


def _signing_keys(credentials: Credentials) -> AioCredentials:
    token = credentials.session_token
    return AioCredentials(
        credentials.access_key_id,
        credentials.secret_access_key.reveal(),
        token.reveal() if token is not None else None,
    )


@contextmanager
def signing_as(credentials: Credentials | None) -> Iterator[None]:
    """Requests sent inside the block are signed with `credentials` (None: unsigned)."""
    token = _SIGN_AS.set(_signing_keys(credentials) if credentials is not None else None)
    try:
        yield
    finally:
        _SIGN_AS.reset(token)
