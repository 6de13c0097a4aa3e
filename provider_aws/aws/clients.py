"""The pool of AWS clients reused across Mounts, and the one place where an AWS call is made:
bounded by a process-wide limit, signed as its caller (signing.py), counted (tally.py), observed,
and its failure classified (errors.py). One client per (service, region) serves every identity.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import AioSession
from botocore import UNSIGNED
from botocore.exceptions import BotoCoreError, ClientError

from provider_aws.aws.caller import CallObserver, Credentials
from provider_aws.aws.errors import classify
from provider_aws.aws.signing import PLACEHOLDER_KEY, sign_as_caller, signing_as
from provider_aws.aws.tally import count_send
from provider_aws.errors import CallOutcome
from provider_aws.settings import Settings

__all__ = ["AwsClients"]


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
        attempts = max(1, self.attempts.get(operation, self.settings.aws_max_attempts))
        async with self._lease((service, region, credentials is not None, attempts)) as client, self._limit:
            method: Callable[..., Any] = getattr(client, operation)
            started = time.monotonic()
            try:
                with signing_as(credentials):
                    response: dict[str, Any] = await method(**params)
            except (ClientError, BotoCoreError) as error:
                failure = classify(service, operation, error)
                self._observe(service, operation, failure.code, failure.outcome, started)
                raise failure from None
            self._observe(service, operation, "success", CallOutcome.OK, started)
            return response

    def _observe(self, service: str, operation: str, code: str, outcome: CallOutcome, started: float) -> None:
        if self.observer is not None:
            self.observer.aws_call(service, operation, code, outcome, time.monotonic() - started)

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
            aws_access_key_id=PLACEHOLDER_KEY,
            aws_secret_access_key=PLACEHOLDER_KEY,
            config=config,
        )
        client = await creator.__aenter__()
        if signed:
            client.meta.events.register("before-sign", sign_as_caller)
        client.meta.events.register("before-send", count_send)
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
