"""The AWS call seam: what a backend calls, with which credentials, and who hears about each call.

`AwsClients` (clients.py) is the provider's `AwsCaller`; unit tests script a fake one."""

from __future__ import annotations

from typing import Any, Protocol

from provider_aws.errors import CallOutcome
from provider_aws.model import SecretText

__all__ = ["AwsCaller", "CallObserver", "Credentials"]


class Credentials(Protocol):
    """What a client needs from an identity; `identity` names who it is (never a token)."""

    @property
    def access_key_id(self) -> str: ...
    @property
    def secret_access_key(self) -> SecretText: ...
    @property
    def session_token(self) -> SecretText | None: ...
    @property
    def identity(self) -> str: ...


class AwsCaller(Protocol):
    """Runs one AWS operation; raises `AwsCallError` (errors.py) on failure."""

    async def call(
        self, service: str, region: str, credentials: Credentials | None, operation: str, **params: Any
    ) -> dict[str, Any]: ...


class CallObserver(Protocol):
    def aws_call(self, service: str, operation: str, code: str, outcome: CallOutcome, seconds: float) -> None:
        """One finished AWS call: `code` is "success" or the AWS error code, `outcome` its class."""
        ...
