"""AWS's account-wide request quotas as token buckets in the proxy, scaled to the simulated nodes.

Each operation's quota is one bucket for the whole account and region. The simulation runs K
provider processes standing for K of N nodes, so each bucket gets K/N of the quota (that
share of the fleet's load is what reaches it), times the time compression. A request that
finds its bucket empty is answered as AWS answers it: `ThrottlingException` (HTTP 400, JSON)
from Secrets Manager and SSM, `Throttling` (HTTP 400, XML) from STS.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from provider_aws.aws.batchpolicy import TokenBucket
from testkit.awsproxy import Fault

__all__ = ["QUOTAS", "Quota", "QuotaGate"]


@dataclass(frozen=True)
class Quota:
    operation: str
    per_second: float
    source: str
    xml: bool = False


QUOTAS = (
    Quota(
        "BatchGetSecretValue",
        100,
        "AWS Secrets Manager quotas: BatchGetSecretValue 100 requests/s, not adjustable",
    ),
    Quota(
        "GetSecretValue", 10_000, "AWS Secrets Manager quotas: GetSecretValue 10,000 requests/s (March 2025)"
    ),
    Quota(
        "DescribeSecret", 40_000, "AWS Secrets Manager quotas: DescribeSecret 40,000 requests/s (March 2025)"
    ),
    Quota(
        "GetParameters",
        3_000,
        "AWS Systems Manager quotas: Parameter Store higher throughput, 3,000 TPS shared by GetParameter "
        "and GetParameters (standard throughput: 40 TPS, too little for any fleet below)",
    ),
    Quota(
        "AssumeRoleWithWebIdentity",
        600,
        "AWS STS quotas: 600 requests/s per account and region, shared by the STS API",
        xml=True,
    ),
)


@dataclass
class QuotaGate:
    """The proxy's gate: one bucket per quota and region, `scale` = K/N x time compression; each
    bucket holds one (real) second of its scaled rate, at least one token. The K sampled nodes
    send far lumpier traffic than the sum of N nodes does, and a bucket of one fleet second
    would hold less than one token of the batch quota.

    STS requests are unsigned, so their region is unknown: STS of every region shares one bucket."""

    scale: float
    quotas: tuple[Quota, ...] = QUOTAS
    throttled: Counter[str] = field(default_factory=Counter)
    # (operation, region) -> monotonic times of the requests its bucket let through
    admitted: dict[tuple[str, str], list[float]] = field(default_factory=dict)
    _quotas: dict[str, Quota] = field(default_factory=dict)
    _buckets: dict[tuple[str, str], TokenBucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self._quotas = {q.operation: q for q in self.quotas}

    def peak_use(self, operation: str, since: float, window: float) -> float:
        """The busiest `window` seconds after `since` in any region: admitted requests as a share of
        the bucket's rate."""
        with self._lock:
            series = [
                [t for t in times if t >= since]
                for (op, _), times in self.admitted.items()
                if op == operation
            ]
        busiest = 0
        for times in series:
            low = 0
            for high, at in enumerate(times):
                while times[low] <= at - window:
                    low += 1
                busiest = max(busiest, high - low + 1)
        return busiest / (self.limit(operation) * window)

    def limit(self, operation: str) -> float:
        """Requests per (real) second one region's bucket admits."""
        return self._quotas[operation].per_second * self.scale

    def __call__(self, service: str, operation: str, region: str) -> Fault | None:
        quota = self._quotas.get(operation)
        if quota is None:
            return None
        with self._lock:
            bucket = self._buckets.get((operation, region))
            if bucket is None:
                rate = self.limit(operation)
                bucket = self._buckets[(operation, region)] = TokenBucket(rate, rate)
            if bucket.take():
                self.admitted.setdefault((operation, region), []).append(time.monotonic())
                return None
            self.throttled[operation] += 1
        code = "Throttling" if quota.xml else "ThrottlingException"
        return Fault(status=400, code=code, message="Rate exceeded", xml=quota.xml)
