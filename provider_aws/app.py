"""The composition root: builds the long-lived parts of a provider from Settings, closes them."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from aiobotocore.session import AioSession, get_session

from provider_aws.aws.batchpolicy import SINGLE_ATTEMPT, BatchPolicy, BatchRules
from provider_aws.aws.caller import CallObserver
from provider_aws.aws.clients import AwsClients
from provider_aws.aws.fetch import Fetcher
from provider_aws.aws.rotation import Rotation, RotationStats, ValueCache
from provider_aws.aws.session import set_up_session
from provider_aws.aws.sharing import CallStats, SharedCalls
from provider_aws.identity.credentials import IdentityProvider, IdentityStats, sts_attempts
from provider_aws.identity.kube import KubeApi, LightkubeApi
from provider_aws.identity.regions import RegionResolver
from provider_aws.mounter import Mounter
from provider_aws.ops.metrics import Metrics
from provider_aws.ops.observe import Observer
from provider_aws.rpc.service import MountHandler
from provider_aws.settings import Settings

__all__ = ["Observed", "Provider", "build_provider", "observed_provider"]


@dataclass(frozen=True)
class Provider:
    mounter: Mounter
    clients: AwsClients
    identities: IdentityProvider
    regions: RegionResolver
    identity_stats: IdentityStats
    rotation_stats: RotationStats
    call_stats: CallStats
    values: ValueCache


@asynccontextmanager
async def build_provider(
    settings: Settings,
    *,
    kube: KubeApi | None = None,
    session: AioSession | None = None,
    aws_observer: CallObserver | None = None,
) -> AsyncIterator[Provider]:
    session = session if session is not None else get_session()
    set_up_session(session)
    kube_api: KubeApi = kube if kube is not None else LightkubeApi()
    stats = IdentityStats()
    clients = AwsClients(
        settings, session, observer=aws_observer, attempts={**SINGLE_ATTEMPT, **sts_attempts(settings)}
    )
    identities = IdentityProvider(settings, clients, kube_api, stats=stats)
    regions = RegionResolver(settings, kube_api, stats.kube_gets)
    rotation = Rotation(ValueCache(settings.value_cache_bytes, max_age=settings.value_cache_max_age))
    shared = SharedCalls(settings.coalesce_window)
    fetcher = Fetcher(clients, BatchPolicy(BatchRules.of(settings)), shared, rotation)
    expiry = asyncio.create_task(rotation.values.expire_continuously())
    try:
        yield Provider(
            Mounter(fetcher, identities, regions),
            clients,
            identities,
            regions,
            stats,
            rotation.stats,
            shared.stats,
            rotation.values,
        )
    finally:
        expiry.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await expiry
        rotation.values.clear()
        await shared.close()
        await identities.close()
        await regions.close()
        await clients.close()
        await kube_api.close()


@dataclass(frozen=True)
class Observed:
    """A provider as `provider-aws serve` runs it: metrics of every layer, one access line per Mount."""

    provider: Provider
    metrics: Metrics
    observer: Observer
    # The Mount handler to serve; the observer follows each Mount through the server.
    handler: MountHandler


@asynccontextmanager
async def observed_provider(settings: Settings, *, kube: KubeApi | None = None) -> AsyncIterator[Observed]:
    metrics = Metrics()
    observer = Observer(metrics)
    async with build_provider(settings, kube=kube, aws_observer=observer) as provider:
        metrics.watch_identity(provider.identity_stats)
        metrics.watch_rotation(provider.rotation_stats, provider.call_stats, provider.values)
        yield Observed(provider, metrics, observer, provider.mounter)
