"""Prometheus metrics: one `Metrics` object owning its own registry, passed where it is needed.

Mounts (count, duration, in flight) come from the server through `observe.Observer`, AWS calls from
`AwsClients`' `CallObserver` hook; identity counters (Kubernetes GETs, STS and Pod Identity agent
calls) are read from the live `IdentityStats` at scrape time by a custom collector, so the identity
layer needs no knowledge of Prometheus. Label values come from small fixed sets: never a pod,
an object name or a value.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from grpclib import Status
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from provider_aws import __version__
from provider_aws.aws.rotation import RotationStats
from provider_aws.aws.sharing import CallStats
from provider_aws.identity.credentials import IdentityStats

__all__ = ["MOUNT_BUCKETS", "PREFIX", "IdentityCollector", "Metrics", "RotationCollector"]

PREFIX = "provider_aws_"
# A Mount answers from cache in milliseconds, from AWS in tens to hundreds, and the driver's
# default deadline is a few seconds; the buckets cover that range.
MOUNT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


def _counter(name: str, help_text: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}{name}", help_text, value=value)


def _labelled(name: str, help_text: str, label: str, counts: Mapping[str, int]) -> CounterMetricFamily:
    family = CounterMetricFamily(f"{PREFIX}{name}", help_text, labels=[label])
    for key, count in sorted(counts.items()):
        family.add_metric([key], count)
    return family


class IdentityCollector(Collector):
    """The identity layer's counters, read from its live `IdentityStats` when scraped."""

    def __init__(self, stats: IdentityStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield _labelled(
            "kubernetes_requests", "Kubernetes API GET requests, by resource.", "resource", stats.kube_gets
        )
        yield _labelled(
            "sts_requests",
            "STS AssumeRoleWithWebIdentity calls (IRSA), by region.",
            "region",
            stats.sts_calls,
        )
        yield _labelled(
            "pod_identity_agent_requests",
            "Requests to the EKS Pod Identity agent, by address family.",
            "family",
            stats.agent_calls,
        )
        yield _counter(
            "credential_requests",
            "Credentials asked of the identity layer (cache hits, coalesced and new exchanges alike).",
            stats.credential_requests,
        )
        yield _counter(
            "identity_credential_cache_hits",
            "Credentials answered from the credential cache.",
            stats.credential_cache_hits,
        )
        yield _counter(
            "identity_credential_calls_coalesced",
            "Credential requests that joined an identical exchange in flight.",
            stats.credential_calls_coalesced,
        )
        yield _counter(
            "identity_service_account_cache_hits",
            "ServiceAccount look-ups answered from the cache.",
            stats.service_account_cache_hits,
        )
        yield _counter(
            "identity_service_account_calls_coalesced",
            "ServiceAccount look-ups that joined an identical look-up in flight.",
            stats.service_account_calls_coalesced,
        )


class RotationCollector(Collector):
    """The AWS layer's rotation and sharing counters, read from its live `RotationStats` and
    `CallStats` (all under `rotation_`: the metric names predate the split)."""

    def __init__(self, stats: RotationStats, calls: CallStats) -> None:
        self._stats = stats
        self._calls = calls

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        calls = self._calls
        for name, help_text, value in (
            ("checks", "Secrets Manager objects whose version a rotation poll decided.", stats.checks),
            ("changed", "Objects whose version to serve differed from the mounted one.", stats.changed),
            ("value_cache_hits", "Secret values answered from the value cache.", stats.value_cache_hits),
            (
                "value_cache_misses",
                "Secret values looked up in the value cache and not found.",
                stats.value_cache_misses,
            ),
            (
                "coalesced",
                "AWS calls answered by an identical call in flight or within the coalesce window.",
                calls.coalesced,
            ),
            (
                "fetches",
                "Value requests (BatchGetSecretValue, GetSecretValue, GetParameters) sent to AWS.",
                calls.fetches,
            ),
            ("describes", "DescribeSecret requests sent to AWS.", calls.describes),
            ("polls", "Mounts that carried the versions mounted before (rotation polls).", stats.polls),
        ):
            yield _counter(f"rotation_{name}", help_text, value)


class Metrics:
    """The provider's metrics: `observe.Observer` feeds them Mounts, `AwsClients` AWS calls."""

    def __init__(self, *, version: str = __version__) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.mounts = Counter(
            f"{PREFIX}mounts",
            "Mount calls answered, by outcome and gRPC status code.",
            ["outcome", "code"],
            registry=self.registry,
        )
        self.mount_duration = Histogram(
            f"{PREFIX}mount_duration_seconds",
            "Time from receiving a Mount to sending its status, by outcome and gRPC status code.",
            ["outcome", "code"],
            buckets=MOUNT_BUCKETS,
            registry=self.registry,
        )
        self.mounts_in_flight = Gauge(
            f"{PREFIX}mounts_in_flight",
            "Mount calls received and not yet answered.",
            registry=self.registry,
        )
        self.aws_requests = Counter(
            f"{PREFIX}aws_requests",
            "AWS API calls (after botocore's retries), by service, operation and outcome "
            "('success' or the AWS error code).",
            ["service", "operation", "outcome"],
            registry=self.registry,
        )
        build = Gauge(
            f"{PREFIX}build_info",
            "Always 1; the labels name the running build.",
            ["version"],
            registry=self.registry,
        )
        build.labels(version=version).set(1)

    # a Mount arrives, and ends (observe.AccessRecord)
    def started(self) -> None:
        self.mounts_in_flight.inc()

    def finished(self, outcome: str, status: Status, seconds: float) -> None:
        self.mounts_in_flight.dec()
        labels = {"outcome": str(outcome), "code": status.name}
        self.mounts.labels(**labels).inc()
        self.mount_duration.labels(**labels).observe(seconds)

    # caller.CallObserver
    def aws_call(self, service: str, operation: str, outcome: str) -> None:
        self.aws_requests.labels(service=service, operation=operation, outcome=outcome).inc()

    def watch_identity(self, stats: IdentityStats) -> None:
        self.registry.register(IdentityCollector(stats))

    def watch_rotation(self, stats: RotationStats, calls: CallStats) -> None:
        self.registry.register(RotationCollector(stats, calls))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
