"""AWS clients reused across Mounts and the one place where an AWS call is made: bounded by a
process-wide limit, counted, and its failure classified.

There is one client per (service, region), shared by every identity. Credentials travel with the
call instead: `call` puts the caller's keys in a context variable of its own task, and a
`before-sign` handler hands them to botocore as that request's `request_credentials`. A botocore
client costs about 0.2 MiB and 15 ms of CPU to build, so a client per pod identity made memory and
cold Mounts grow with the number of ServiceAccounts on the node.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiobotocore.config import AioConfig
from aiobotocore.credentials import AioCredentials
from aiobotocore.session import AioSession
from botocore import UNSIGNED
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ParamValidationError,
    ReadTimeoutError,
)

from provider_aws.model import SecretText
from provider_aws.settings import Settings

__all__ = [
    "THROTTLING_CODES",
    "AwsCallError",
    "AwsCaller",
    "AwsClients",
    "CallObserver",
    "Credentials",
    "RequestTally",
    "tally_requests",
]

# Error codes AWS services (Secrets Manager, SSM, STS) answer when a quota is exceeded.
THROTTLING_CODES = frozenset(
    {"ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded"}
)


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
    """The AWS call seam: `AwsClients` in the provider, a scripted fake in unit tests."""

    async def call(
        self, service: str, region: str, credentials: Credentials | None, operation: str, **params: Any
    ) -> dict[str, Any]: ...


class CallObserver(Protocol):
    def aws_call(self, service: str, operation: str, outcome: str) -> None: ...


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


_SIGN_AS: contextvars.ContextVar[AioCredentials | None] = contextvars.ContextVar("aws_sign_as", default=None)
# Keys a shared client is built with so that botocore never looks for ambient credentials
# (environment, instance metadata). Nothing is ever signed with them: see `_sign_as_caller`.
_PLACEHOLDER_KEY = "PROVIDER-AWS-NO-AMBIENT-CREDENTIALS"


def _sign_as_caller(request: Any, **_: Any) -> None:
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


def _count_send(**_: Any) -> None:
    tally = _TALLY.get()
    if tally is not None:
        tally.count += 1


class AwsCallError(Exception):
    """A classified failure of one AWS call (after botocore's own bounded retries)."""

    def __init__(self, service: str, operation: str, code: str, http_status: int | None, detail: str) -> None:
        super().__init__(service, operation, code)
        self.service = service
        self.operation = operation
        self.code = code
        self.http_status = http_status
        self.detail = detail

    @property
    def retriable(self) -> bool:
        """Worth trying the failover region: a server-side or network failure, never a 4xx."""
        return self.http_status is None or self.http_status >= 500

    @property
    def throttled(self) -> bool:
        return self.code in THROTTLING_CODES or self.http_status == 429

    def __str__(self) -> str:
        return f"{self.service} {self.operation} failed: {self.code}"


def classify(service: str, operation: str, error: Exception) -> AwsCallError:
    if isinstance(error, ClientError):
        info = error.response.get("Error", {})
        meta = error.response.get("ResponseMetadata", {})
        status = meta.get("HTTPStatusCode")
        return AwsCallError(
            service,
            operation,
            str(info.get("Code") or "Unknown"),
            int(status) if status is not None else 0,
            str(info.get("Message") or ""),
        )
    if isinstance(error, ParamValidationError):
        # Caught by botocore before sending: the request itself is malformed, like a 400.
        return AwsCallError(service, operation, "ParamValidationError", 400, "invalid request parameters")
    if isinstance(error, ConnectTimeoutError | ReadTimeoutError):
        return AwsCallError(service, operation, "Timeout", None, "no answer in time")
    if isinstance(error, EndpointConnectionError | ConnectionClosedError):
        return AwsCallError(service, operation, "NetworkError", None, "could not reach the endpoint")
    return AwsCallError(service, operation, type(error).__name__, None, "request failed")


# (service, region, signed, attempts): unsigned clients never sign, signed ones always sign as
# their caller; `attempts` is botocore's for the operations that client serves.
_ClientKey = tuple[str, str, bool, int]


@dataclass
class _Entry:
    client: Any
    leases: int = 0
    retired: bool = False


@dataclass
class AwsClients:
    """Bounded pool of open aiobotocore clients, one per (service, region, signed or not, attempts);
    evicted clients close once no call uses them. The one place where AWS clients are configured.

    `attempts` overrides botocore's attempts per operation (e.g. 1 for a call whose caller has a
    cheaper way out than retrying); those operations get a client of their own."""

    settings: Settings
    session: AioSession
    observer: CallObserver | None = None
    max_clients: int = 64
    attempts: Mapping[str, int] = field(default_factory=dict)
    _clients: OrderedDict[_ClientKey, _Entry] = field(default_factory=OrderedDict)
    _locks: dict[_ClientKey, asyncio.Lock] = field(default_factory=dict)
    _limit: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._limit = asyncio.Semaphore(max(1, self.settings.max_concurrency))
        self._config = AioConfig(
            retries={"mode": "standard", "total_max_attempts": max(1, self.settings.aws_max_attempts)},
            connect_timeout=self.settings.aws_connect_timeout,
            read_timeout=self.settings.aws_read_timeout,
            max_pool_connections=max(1, self.settings.max_concurrency),
            user_agent_extra=self.settings.user_agent_extra,
        )
        self._unsigned_config = self._config.merge(AioConfig(signature_version=UNSIGNED))

    @property
    def open_clients(self) -> int:
        return len(self._clients)

    async def call(
        self, service: str, region: str, credentials: Credentials | None, operation: str, **params: Any
    ) -> dict[str, Any]:
        """Run one AWS operation (e.g. "batch_get_secret_value"); raise AwsCallError on failure.

        `credentials` None sends the request unsigned (STS AssumeRoleWithWebIdentity: the token is
        the proof)."""
        signing = _signing_keys(credentials) if credentials is not None else None
        attempts = max(1, self.attempts.get(operation, self.settings.aws_max_attempts))
        async with self._lease((service, region, signing is not None, attempts)) as client, self._limit:
            method: Callable[..., Any] = getattr(client, operation)
            signing_as = _SIGN_AS.set(signing)
            try:
                response: dict[str, Any] = await method(**params)
            except (ClientError, BotoCoreError) as error:
                failure = classify(service, operation, error)
                self._observe(service, operation, failure.code)
                raise failure from None
            finally:
                _SIGN_AS.reset(signing_as)
            self._observe(service, operation, "success")
            return response

    def _observe(self, service: str, operation: str, outcome: str) -> None:
        if self.observer is not None:
            self.observer.aws_call(service, operation, outcome)

    @asynccontextmanager
    async def _lease(self, key: _ClientKey) -> AsyncIterator[Any]:
        entry = self._clients.get(key)
        if entry is None:
            lock = self._locks.setdefault(key, asyncio.Lock())
            async with lock:
                entry = self._clients.get(key)
                if entry is None:
                    entry = _Entry(await self._open(*key))
                    self._clients[key] = entry
                    await self._evict()
            self._locks.pop(key, None)
        if key in self._clients:
            self._clients.move_to_end(key)
        entry.leases += 1
        try:
            yield entry.client
        finally:
            entry.leases -= 1
            if entry.retired and entry.leases == 0:
                await entry.client.close()

    async def _open(self, service: str, region: str, signed: bool, attempts: int) -> Any:
        config = self._config if signed else self._unsigned_config
        if attempts != self._config.retries["total_max_attempts"]:
            config = config.merge(AioConfig(retries={"mode": "standard", "total_max_attempts": attempts}))
        creator = self.session.create_client(
            service,
            region_name=region,
            aws_access_key_id=_PLACEHOLDER_KEY,
            aws_secret_access_key=_PLACEHOLDER_KEY,
            config=config,
        )
        client = await creator.__aenter__()
        if signed:
            client.meta.events.register("before-sign", _sign_as_caller)
        client.meta.events.register("before-send", _count_send)
        return client

    async def _evict(self) -> None:
        while len(self._clients) > self.max_clients:
            _, entry = self._clients.popitem(last=False)
            entry.retired = True
            if entry.leases == 0:
                await entry.client.close()

    async def close(self) -> None:
        entries = list(self._clients.values())
        self._clients.clear()
        for entry in entries:
            entry.retired = True
            if entry.leases == 0:
                await entry.client.close()
