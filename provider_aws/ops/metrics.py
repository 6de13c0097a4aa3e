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
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from provider_aws import __version__
from provider_aws.aws.rotation import RotationStats, ValueCache
from provider_aws.aws.sharing import CallStats
from provider_aws.errors import CallOutcome
from provider_aws.identity.credentials import IdentityStats

__all__ = ["AWS_BUCKETS", "MOUNT_BUCKETS", "PREFIX", "IdentityCollector", "Metrics", "RotationCollector"]

PREFIX = "provider_aws_"
# A Mount answers from cache in milliseconds, from AWS in tens to hundreds, and the driver's
# default deadline is a few seconds; the buckets cover that range.
MOUNT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
# One AWS call, botocore's retries included: tens of milliseconds in region, up to the read timeout.
AWS_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def _counter(name: str, help_text: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(f"{PREFIX}{name}", help_text, value=value)


def _by_outcome(name: str, help_text: str, label: str, counts: Mapping[tuple[str, str], int]) -> Metric:
    """A counter of calls by `label` and outcome (ok, throttled, denied, error)."""
    family = CounterMetricFamily(f"{PREFIX}{name}", help_text, labels=[label, "outcome"])
    for (key, outcome), count in sorted(counts.items()):
        family.add_metric([key, str(outcome)], count)
    return family


class IdentityCollector(Collector):
    """The identity layer's counters, read from its live `IdentityStats` when scraped."""

    def __init__(self, stats: IdentityStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        yield _by_outcome(
            "kubernetes_requests",
            "Kubernetes API GET requests, by resource and outcome.",
            "resource",
            stats.kube_gets,
        )
        yield _by_outcome(
            "sts_requests",
            "STS AssumeRoleWithWebIdentity calls (IRSA), by region and outcome.",
            "region",
            stats.sts_calls,
        )
        yield _by_outcome(
            "pod_identity_agent_requests",
            "Requests to the EKS Pod Identity agent, by address family and outcome.",
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
    """The AWS layer's rotation, sharing and value cache figures, read from its live
    `RotationStats`, `CallStats` and `ValueCache` when scraped. `rotation_` names count rotation
    polls only; the sharing counters count first Mounts and polls alike."""

    def __init__(self, stats: RotationStats, calls: CallStats, values: ValueCache) -> None:
        self._stats = stats
        self._calls = calls
        self._values = values

    def collect(self) -> Iterator[Metric]:
        stats = self._stats
        calls = self._calls
        for name, help_text, value in (
            (
                "rotation_polls",
                "Mounts that carried the versions mounted before (rotation polls).",
                stats.polls,
            ),
            (
                "rotation_checks",
                "Secrets Manager objects whose version a rotation poll decided.",
                stats.checks,
            ),
            (
                "rotation_changed",
                "Objects of polls whose version to serve differed from the mounted one.",
                stats.changed,
            ),
            (
                "rotation_value_cache_hits",
                "Objects of polls answered from the value cache.",
                stats.value_cache_hits,
            ),
            (
                "rotation_value_cache_misses",
                "Objects of polls the value cache did not hold (fetched).",
                stats.value_cache_misses,
            ),
            (
                "rotation_describes",
                "DescribeSecret requests sent to AWS (by rotation polls).",
                calls.describes,
            ),
            (
                "shared_calls",
                "AWS calls answered by an identical call in flight or within the coalesce window.",
                calls.coalesced,
            ),
            (
                "value_requests",
                "Value requests (BatchGetSecretValue, GetSecretValue, GetParameters) sent to AWS.",
                calls.fetches,
            ),
        ):
            yield _counter(name, help_text, value)
        values = self._values
        yield GaugeMetricFamily(
            f"{PREFIX}value_cache_entries",
            "Secret values held by the rotation value cache.",
            value=len(values),
        )
        yield GaugeMetricFamily(
            f"{PREFIX}value_cache_bytes",
            "Memory the rotation value cache accounts for its values and keys, in bytes.",
            value=values.size_bytes,
        )


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
        self.aws_request_duration = Histogram(
            f"{PREFIX}aws_request_duration_seconds",
            "Time of AWS API calls (Secrets Manager, SSM, STS; botocore's retries included), by "
            "service, operation and outcome (ok, throttled, denied, error).",
            ["service", "operation", "outcome"],
            buckets=AWS_BUCKETS,
            registry=self.registry,
        )
        # process_*: CPU seconds, resident and virtual memory, open file descriptors, start time.
        ProcessCollector(registry=self.registry)
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
    def aws_call(self, service: str, operation: str, code: str, outcome: CallOutcome, seconds: float) -> None:
        self.aws_requests.labels(service=service, operation=operation, outcome=code).inc()
        self.aws_request_duration.labels(service=service, operation=operation, outcome=str(outcome)).observe(
            seconds
        )

    def watch_identity(self, stats: IdentityStats) -> None:
        self.registry.register(IdentityCollector(stats))

    def watch_rotation(self, stats: RotationStats, calls: CallStats, values: ValueCache) -> None:
        self.registry.register(RotationCollector(stats, calls, values))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
