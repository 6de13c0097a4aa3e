"""The Go provider's cost for a Mount, from its request pattern: every request one after another.

Per Mount the Go provider (aws/secrets-store-csi-driver-provider-aws) reads the ServiceAccount,
reads the pod and its node when no `region` is given, exchanges the token with STS once per
region, then calls GetSecretValue once per secret and GetParameters once per 10 parameters; on a
rotation poll it calls DescribeSecret once per secret (GetSecretValue only for changed ones).
It keeps nothing between Mounts, so cold and warm cost the same. Each request costs one round trip.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

__all__ = ["GoCost", "go_cost"]


@dataclass(frozen=True)
class GoCost:
    requests: Counter[str]
    seconds: float

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())


def go_cost(
    *, secrets: int = 0, parameters: int = 0, poll: bool = False, region_given: bool = True, delay: float
) -> GoCost:
    requests: Counter[str] = Counter({"GET serviceaccount": 1})
    if not region_given:
        requests["GET pod"] += 1
        requests["GET node"] += 1
    requests["AssumeRoleWithWebIdentity"] += 1
    if secrets:
        requests["DescribeSecret" if poll else "GetSecretValue"] += secrets
    if parameters:
        requests["GetParameters"] += -(-parameters // 10)
    return GoCost(requests, sum(requests.values()) * delay)
