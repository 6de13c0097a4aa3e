"""Prometheus metrics: one `Metrics` object owning its own registry, passed where it is needed.

Mounts (count, duration, in flight) come from the server's `MountObserver` hooks, AWS calls from
`AwsClients`' `CallObserver` hook; identity counters (Kubernetes GETs, STS and Pod Identity agent
calls) are read from the live `IdentityStats` at scrape time by a custom collector, so the identity
layer needs no knowledge of Prometheus. Label values come from small fixed sets: never a pod,
an object name or a value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import fields, is_dataclass
from typing import Any

from grpclib import Status
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector

from provider_aws import __version__
from provider_aws.aws.calls import RotationStats
from provider_aws.identity.credentials import IdentityStats

__all__ = ["MOUNT_BUCKETS", "PREFIX", "IdentityCollector", "Metrics", "StatsCollector"]

PREFIX = "provider_aws_"
# A Mount answers from cache in milliseconds, from AWS in tens to hundreds, and the driver's
# default deadline is a few seconds; the buckets cover that range.
MOUNT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


_ROTATION_HELP = {
    "checks": "Secrets Manager objects whose version a rotation poll decided.",
    "changed": "Objects whose version to serve differed from the mounted one.",
    "value_cache_hits": "Secret values answered from the value cache.",
    "value_cache_misses": "Secret values looked up in the value cache and not found.",
    "coalesced": "AWS calls answered by an identical call in flight or within the coalesce window.",
    "fetches": "Value requests (BatchGetSecretValue, GetSecretValue, GetParameters) sent to AWS.",
    "describes": "DescribeSecret requests sent to AWS.",
    "polls": "Mounts that carried the versions mounted before (rotation polls).",
}


_IDENTITY_KNOWN = frozenset({"kube_gets", "sts_calls", "agent_calls", "credential_requests"})


class IdentityCollector(Collector):
    """Counters read from `IdentityStats` when scraped."""

    def __init__(self, stats: IdentityStats) -> None:
        self._stats = stats

    def collect(self) -> Iterator[Metric]:
        kube = CounterMetricFamily(
            f"{PREFIX}kubernetes_requests",
            "Kubernetes API GET requests, by resource.",
            labels=["resource"],
        )
        for resource, count in sorted(self._stats.kube_gets.items()):
            kube.add_metric([resource], count)
        yield kube
        sts = CounterMetricFamily(
            f"{PREFIX}sts_requests",
            "STS AssumeRoleWithWebIdentity calls (IRSA), by region.",
            labels=["region"],
        )
        for region, count in sorted(self._stats.sts_calls.items()):
            sts.add_metric([region], count)
        yield sts
        agent = CounterMetricFamily(
            f"{PREFIX}pod_identity_agent_requests",
            "Requests to the EKS Pod Identity agent, by address family.",
            labels=["family"],
        )
        for family, count in sorted(self._stats.agent_calls.items()):
            agent.add_metric([family], count)
        yield agent
        yield CounterMetricFamily(
            f"{PREFIX}credential_requests",
            "Credentials asked of the identity layer (cache hits, coalesced and new exchanges alike).",
            value=self._stats.credential_requests,
        )


class StatsCollector(Collector):
    """Counters read at scrape time from a dataclass of int fields (e.g. the rotation stats).

    Every int field `name` not in `skip` becomes `provider_aws_<prefix>_<name>_total`; other
    fields are skipped.
    """

    def __init__(
        self, stats: Any, prefix: str, describe: Callable[[str], str], skip: frozenset[str] = frozenset()
    ) -> None:
        if not is_dataclass(stats):
            raise TypeError("StatsCollector reads a dataclass instance")
        self._stats = stats
        self._prefix = prefix
        self._describe = describe
        self._skip = skip

    def collect(self) -> Iterator[Metric]:
        for item in fields(self._stats):
            value = getattr(self._stats, item.name)
            if item.name not in self._skip and isinstance(value, int) and not isinstance(value, bool):
                name = f"{PREFIX}{self._prefix}_{item.name}"
                yield CounterMetricFamily(name, self._describe(item.name), value=value)


class Metrics:
    """The provider's metrics; implements `service.MountObserver` and `awsclients.CallObserver`."""

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

    # service.MountObserver
    def started(self) -> None:
        self.mounts_in_flight.inc()

    def finished(self, outcome: str, status: Status, seconds: float) -> None:
        self.mounts_in_flight.dec()
        labels = {"outcome": str(outcome), "code": status.name}
        self.mounts.labels(**labels).inc()
        self.mount_duration.labels(**labels).observe(seconds)

    # awsclients.CallObserver
    def aws_call(self, service: str, operation: str, outcome: str) -> None:
        self.aws_requests.labels(service=service, operation=operation, outcome=outcome).inc()

    def watch_identity(self, stats: IdentityStats) -> None:
        self.registry.register(IdentityCollector(stats))
        # Its other counters (cache hits, joined calls) as provider_aws_identity_<name>_total.
        self.registry.register(
            StatsCollector(
                stats, "identity", lambda name: f"Identity layer counter {name}.", skip=_IDENTITY_KNOWN
            )
        )

    def watch_rotation(self, stats: RotationStats) -> None:
        """`provider_aws_rotation_<counter>_total` for every counter of the rotation layer."""
        self.watch_stats(
            stats, "rotation", lambda name: _ROTATION_HELP.get(name, f"Rotation counter {name}.")
        )

    def watch_stats(self, stats: Any, prefix: str, describe: Callable[[str], str]) -> None:
        self.registry.register(StatsCollector(stats, prefix, describe))

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
