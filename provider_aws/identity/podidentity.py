"""Client of the node's EKS Pod Identity agent: a pod's token in, temporary credentials out.

`preferredAddressType` picks the agent's IPv4 or IPv6 URL; `auto` tries IPv4 then IPv6.
Only an unreachable or failing (5xx) agent makes us try the next address: an agent that
refuses the token would refuse it on the other address too.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from dataclasses import dataclass
from datetime import datetime

import aiohttp
import structlog

from provider_aws.attributes import POD_IDENTITY_AUDIENCE
from provider_aws.errors import AccessDeniedError, CallOutcome, UnavailableError
from provider_aws.model import AddressPreference, SecretText
from provider_aws.settings import Settings

__all__ = ["AgentCredentials", "PodIdentityAgent"]

_log = structlog.get_logger(__name__)
_DETAIL_LIMIT = 200


@dataclass(frozen=True, slots=True)
class AgentCredentials:
    access_key_id: str
    secret_access_key: SecretText
    session_token: SecretText | None
    expiration: datetime | None


class _Unreachable(Exception):
    """This address did not answer usefully; another one may."""


class PodIdentityAgent:
    def __init__(self, settings: Settings, calls: Counter[tuple[str, str]] | None = None) -> None:
        self._settings = settings
        # Requests by (address family, outcome).
        self.calls: Counter[tuple[str, str]] = calls if calls is not None else Counter()
        self._session: aiohttp.ClientSession | None = None

    def _urls(self, preference: AddressPreference) -> tuple[tuple[str, str], ...]:
        ipv4 = ("ipv4", self._settings.pod_identity_endpoint_ipv4)
        ipv6 = ("ipv6", self._settings.pod_identity_endpoint_ipv6)
        if preference is AddressPreference.IPV4:
            return (ipv4,)
        if preference is AddressPreference.IPV6:
            return (ipv6,)
        return (ipv4, ipv6)

    async def fetch(self, token: SecretText, preference: AddressPreference, who: str) -> AgentCredentials:
        """Credentials for `who` (a ServiceAccount, named in errors); the token is never shown."""
        failures: list[str] = []
        for family, url in self._urls(preference):
            try:
                return await self._fetch_from(family, url, token, who)
            except _Unreachable as problem:
                failures.append(f"{url}: {problem}")
                _log.warning("pod identity agent unreachable", address=family, url=url, reason=str(problem))
        raise UnavailableError(
            f"the EKS Pod Identity agent did not answer for {who} ({'; '.join(failures)}): check that the "
            "eks-pod-identity-agent runs on this node, or set preferredAddressType"
        )

    async def _fetch_from(self, family: str, url: str, token: SecretText, who: str) -> AgentCredentials:
        if self._session is None:
            self._session = aiohttp.ClientSession(trust_env=False)
        timeout = aiohttp.ClientTimeout(total=self._settings.pod_identity_timeout)
        try:
            async with self._session.get(
                url, headers={"Authorization": token.reveal()}, timeout=timeout, allow_redirects=False
            ) as response:
                status = response.status
                body = await response.text(errors="replace")
        except (aiohttp.ClientError, TimeoutError, OSError) as error:
            self.calls[(family, CallOutcome.ERROR)] += 1
            raise _Unreachable(type(error).__name__) from None
        self.calls[(family, CallOutcome.of_http(status))] += 1
        if status >= 500:
            raise _Unreachable(f"HTTP {status} {_detail(body, token)}".rstrip())
        if status != 200:
            raise AccessDeniedError(
                f"the EKS Pod Identity agent refused the token of {who} (HTTP {status}"
                f"{': ' + _detail(body, token) if body else ''}): check that a Pod Identity association "
                f"exists for this ServiceAccount and that its role trusts {POD_IDENTITY_AUDIENCE}"
            )
        try:
            return _parse(body)
        except (ValueError, KeyError, TypeError, RecursionError) as error:
            raise UnavailableError(
                f"the EKS Pod Identity agent at {url} sent an unexpected answer for {who} "
                f"({type(error).__name__})"
            ) from None

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
            # Let aiohttp's connector finish closing its transports.
            await asyncio.sleep(0)


def _parse(body: str) -> AgentCredentials:
    data = json.loads(body)
    key_id, secret = data["AccessKeyId"], data["SecretAccessKey"]
    if not isinstance(key_id, str) or not isinstance(secret, str) or not key_id or not secret:
        raise ValueError("missing AccessKeyId or SecretAccessKey")
    token = data.get("Token")
    expiration = data.get("Expiration")
    return AgentCredentials(
        access_key_id=key_id,
        secret_access_key=SecretText(secret),
        session_token=SecretText(token) if isinstance(token, str) and token else None,
        expiration=_timestamp(expiration) if isinstance(expiration, str) and expiration else None,
    )


def _timestamp(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("Expiration without a time zone")
    return moment


def _detail(body: str, token: SecretText) -> str:
    """The agent's own explanation, shortened, with the token cut out should it echo it."""
    text = body
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            text = data["message"]
    except (ValueError, RecursionError):
        pass
    text = " ".join(token.redact_in(text).split())
    return text[:_DETAIL_LIMIT]
