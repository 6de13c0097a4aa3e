"""AWS credentials for a Mount: Pod Identity, static credentials or IRSA, cached per identity.

Order: `usePodIdentity` → the node's Pod Identity agent; else static credentials from the
mount's `secrets`; else IRSA (the ServiceAccount's role, STS AssumeRoleWithWebIdentity).

Credentials are kept per (namespace, ServiceAccount, role ARN or Pod Identity, region) —
never per token, so a cache key can be logged — until `credential_refresh_margin` before they
expire. Pods of one ServiceAccount share them: they hold the same identity. Two
ServiceAccounts annotated with the same role are two identities, each exchanging its own
token, because the role's trust policy decides per ServiceAccount.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime

import structlog

from provider_aws.attributes import IRSA_AUDIENCE, POD_IDENTITY_AUDIENCE, ROLE_ARN_ANNOTATION, TOKENS
from provider_aws.aws.caller import AwsCaller
from provider_aws.aws.errors import AwsCallError, sts_error
from provider_aws.cache import CachingLoader, Clock
from provider_aws.errors import AccessDeniedError, CallOutcome, PreconditionError
from provider_aws.identity.kube import KubeApi, OutcomeCounts, counted
from provider_aws.identity.podidentity import PodIdentityAgent
from provider_aws.model import MountPlan, PodInfo, SecretText, StaticCredentials
from provider_aws.settings import Settings

__all__ = [
    "AwsCredentials",
    "IdentityProvider",
    "IdentityStats",
    "role_session_name",
    "sts_attempts",
]

_log = structlog.get_logger(__name__)
_STS_ASSUME = "assume_role_with_web_identity"
# STS's quota (600 requests/s per account and region) is shared by everything in the account: a
# fleet rollout can meet it, and a throttled exchange would fail the Mount, so it gets more tries.
STS_EXTRA_ATTEMPTS = 2


def sts_attempts(settings: Settings) -> dict[str, int]:
    """botocore's attempts for the STS exchange: two more than for other requests."""
    return {_STS_ASSUME: max(1, settings.aws_max_attempts) + STS_EXTRA_ATTEMPTS}


# STS RoleSessionName: 2 to 64 characters of [\w+=,.@-].
_SESSION_NAME_MAX = 64
_SESSION_NAME_BAD = re.compile(r"[^\w+=,.@-]", re.ASCII)


@dataclass(frozen=True, slots=True)
class AwsCredentials:
    access_key_id: str
    secret_access_key: SecretText
    session_token: SecretText | None
    expiration: datetime | None
    # Who this is, never a token: the key of every per-identity cache.
    identity: str


@dataclass(slots=True)
class IdentityStats:
    """Call counters for metrics; mutable on purpose, one instance per process."""

    # Kubernetes GETs by resource ("serviceaccounts", "pods", "nodes") and outcome.
    kube_gets: OutcomeCounts = field(default_factory=Counter)
    # STS AssumeRoleWithWebIdentity calls by region and outcome.
    sts_calls: OutcomeCounts = field(default_factory=Counter)
    # Requests to the Pod Identity agent by address family ("ipv4", "ipv6") and outcome.
    agent_calls: OutcomeCounts = field(default_factory=Counter)
    credential_requests: int = 0
    # Answered from the credential / ServiceAccount caches, or by joining an identical call in flight.
    credential_cache_hits: int = 0
    credential_calls_coalesced: int = 0
    service_account_cache_hits: int = 0
    service_account_calls_coalesced: int = 0

    # Callbacks for the caches below: one per counter, so the counters stay plain typed fields.
    def credential_hit(self) -> None:
        self.credential_cache_hits += 1

    def credential_joined(self) -> None:
        self.credential_calls_coalesced += 1

    def service_account_hit(self) -> None:
        self.service_account_cache_hits += 1

    def service_account_joined(self) -> None:
        self.service_account_calls_coalesced += 1


@dataclass(frozen=True, slots=True)
class _Account:
    role_arn: str | None


def role_session_name(pod: PodInfo) -> str:
    """`pod@namespace`, made to fit STS's alphabet and length (a hash keeps long names unique)."""
    name = _SESSION_NAME_BAD.sub("-", f"{pod.name}@{pod.namespace}")
    if len(name) > _SESSION_NAME_MAX:
        digest = hashlib.sha256(name.encode()).hexdigest()[:8]
        name = f"{name[: _SESSION_NAME_MAX - 9]}-{digest}"
    return name if len(name) >= 2 else f"csi-{name}"


def _require_token(plan: MountPlan, audience: str) -> SecretText:
    fix = f'add {{"audience": "{audience}"}} to spec.tokenRequests of the CSIDriver secrets-store.csi.k8s.io'
    if plan.tokens is None:
        raise PreconditionError(f"the mount request has no {TOKENS} attribute: {fix}")
    token = plan.token_for(audience)
    if token is None:
        raise PreconditionError(f"{TOKENS} holds no token for audience {audience}: {fix}")
    return token


def _ttl(expiration: datetime | None, margin: float) -> float:
    if expiration is None:
        return 0.0
    return (expiration - datetime.now(UTC)).total_seconds() - margin


class IdentityProvider:
    def __init__(
        self,
        settings: Settings,
        clients: AwsCaller,
        kube: KubeApi,
        *,
        stats: IdentityStats | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        self._settings = settings
        self._clients = clients
        self._kube = kube
        self.stats = stats if stats is not None else IdentityStats()
        size = settings.credential_cache_size
        self._credentials: CachingLoader[tuple[str, str], AwsCredentials] = CachingLoader(
            size,
            clock,
            on_hit=self.stats.credential_hit,
            on_join=self.stats.credential_joined,
        )
        self._accounts: CachingLoader[tuple[str, str], _Account] = CachingLoader(
            size,
            clock,
            on_hit=self.stats.service_account_hit,
            on_join=self.stats.service_account_joined,
        )
        self._agent = PodIdentityAgent(settings, self.stats.agent_calls)
        # Keys the fingerprint of static credentials; never leaves the process.
        self._fingerprint_key = secrets.token_bytes(32)

    async def credentials_for(self, plan: MountPlan, region: str) -> AwsCredentials:
        self.stats.credential_requests += 1
        if plan.use_pod_identity:
            return await self._pod_identity(plan)
        static = plan.static_credentials
        if static is not None:
            if self._settings.refuse_static_credentials:
                raise AccessDeniedError(
                    "static credentials (awsAccessKeyId and awsSecretAccessKey in the volume's "
                    "nodePublishSecretRef) are refused by this provider (--refuse-static-credentials); "
                    f"remove nodePublishSecretRef from the volume of pod {plan.pod.name} (namespace: "
                    f"{plan.pod.namespace}) and use IRSA or EKS Pod Identity"
                )
            return AwsCredentials(
                access_key_id=static.access_key_id,
                secret_access_key=static.secret_access_key,
                session_token=static.session_token,
                expiration=None,
                identity=f"static:{static.access_key_id}:{self._fingerprint(static)}",
            )
        return await self._irsa(plan, region)

    def _fingerprint(self, static: StaticCredentials) -> str:
        """Tells apart two key pairs with the same access key id, so that knowing another's
        access key id is never enough to be served its cached values or clients."""
        token = static.session_token.reveal() if static.session_token is not None else ""
        material = f"{static.secret_access_key.reveal()}\0{token}".encode()
        return hmac.new(self._fingerprint_key, material, hashlib.sha256).hexdigest()[:16]

    async def _pod_identity(self, plan: MountPlan) -> AwsCredentials:
        token = _require_token(plan, POD_IDENTITY_AUDIENCE)
        pod = plan.pod
        identity = f"pod-identity:{pod.namespace}/{pod.service_account}"
        who = f"ServiceAccount {pod.service_account} (namespace: {pod.namespace})"

        async def load() -> tuple[AwsCredentials, float]:
            got = await self._agent.fetch(token, plan.preferred_address, who)
            credentials = AwsCredentials(
                got.access_key_id, got.secret_access_key, got.session_token, got.expiration, identity
            )
            return credentials, _ttl(got.expiration, self._settings.credential_refresh_margin)

        # The agent's answer does not depend on the region: one entry serves every region.
        return await self._credentials.get((identity, ""), load)

    async def _irsa(self, plan: MountPlan, region: str) -> AwsCredentials:
        token = _require_token(plan, IRSA_AUDIENCE)
        pod = plan.pod
        role_arn = await self._role_arn(pod.namespace, pod.service_account)
        identity = f"irsa:{pod.namespace}/{pod.service_account}:{role_arn}"

        async def load() -> tuple[AwsCredentials, float]:
            credentials = await self._assume(role_arn, token, region, pod, identity)
            return credentials, _ttl(credentials.expiration, self._settings.credential_refresh_margin)

        return await self._credentials.get((identity, region), load)

    async def _role_arn(self, namespace: str, name: str) -> str:
        async def load() -> tuple[_Account, float]:
            annotations = await counted(
                self.stats.kube_gets,
                "serviceaccounts",
                self._kube.service_account_annotations(namespace, name),
            )
            role = annotations.get(ROLE_ARN_ANNOTATION, "").strip()
            return _Account(role or None), self._settings.service_account_ttl

        account = await self._accounts.get((namespace, name), load)
        if account.role_arn is None:
            raise PreconditionError(
                f"An IAM role must be associated with service account {name} (namespace: {namespace}): "
                f"annotate it with {ROLE_ARN_ANNOTATION}, or set usePodIdentity"
            )
        return account.role_arn

    async def _assume(
        self, role_arn: str, token: SecretText, region: str, pod: PodInfo, identity: str
    ) -> AwsCredentials:
        who = f"role {role_arn} for service account {pod.service_account} (namespace: {pod.namespace})"
        try:
            answer = await self._clients.call(
                "sts",
                region,
                None,
                _STS_ASSUME,
                RoleArn=role_arn,
                RoleSessionName=role_session_name(pod),
                WebIdentityToken=token.reveal(),
            )
        except AwsCallError as error:
            refusal = sts_error(error, who, region, token)
            self.stats.sts_calls[(region, CallOutcome.of_error(refusal))] += 1
            raise refusal from None
        self.stats.sts_calls[(region, CallOutcome.OK)] += 1
        found = answer["Credentials"]
        _log.debug("sts exchange", identity=identity, region=region)
        return AwsCredentials(
            access_key_id=found["AccessKeyId"],
            secret_access_key=SecretText(found["SecretAccessKey"]),
            session_token=SecretText(found["SessionToken"]),
            expiration=found["Expiration"].astimezone(UTC),
            identity=identity,
        )

    async def close(self) -> None:
        await self._credentials.close()
        await self._accounts.close()
        await self._agent.close()
