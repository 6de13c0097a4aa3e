"""The fleet scenarios and the pods each one mounts on the simulated nodes.

A scenario describes the whole fleet (N nodes, P pods); the simulation runs K of its nodes,
each with P/N pods, and scales every account-wide quota by K/N. Time is compressed by
`compression`: arrivals, polls and the providers' own windows, TTLs and back-offs run that much
faster, and quotas and the Go client's Kubernetes QPS admit that many more requests per second.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, replace

__all__ = ["NAMESPACE", "Pod", "Scenario", "default_scenarios", "plan_pods", "secret_names"]

NAMESPACE = "fleet"
PRIMARY = "us-east-1"
FAILOVER = "us-west-2"
# Secrets and parameters seeded in moto; each ServiceAccount reads its own window of them.
SECRET_POOL = 200
PARAMETER_POOL = 40


@dataclass(frozen=True)
class Scenario:
    name: str
    nodes: int = 500
    pods: int = 10_000
    # Seconds (fleet time) over which the pods arrive.
    rollout_seconds: float = 60.0
    # "uniform", "ramp" (rate rising linearly from zero) or "step" (all at once).
    arrival: str = "uniform"
    service_accounts: int = 50
    objects_per_pod: int = 10
    # Share of each pod's objects that are SSM parameters.
    ssm_share: float = 0.0
    # Rotation polls (the driver's interval, fleet time) measured after every pod is mounted.
    poll_interval: float = 0.0
    poll_rounds: int = 0
    # Secrets Manager and SSM in the primary region answer 503 throughout; failoverRegion is set.
    outage: bool = False
    compression: float = 4.0
    # Operator settings for `provider-aws serve` (fleet time; compressed when passed).
    batch_rate_share: float = 0.0

    @property
    def pods_per_node(self) -> int:
        return max(1, round(self.pods / self.nodes))

    @property
    def regions(self) -> tuple[str, ...]:
        return (PRIMARY, FAILOVER) if self.outage else (PRIMARY,)

    def scaled(self, simulated_nodes: int) -> float:
        """The factor applied to every account-wide quota: K/N x compression."""
        return simulated_nodes / self.nodes * self.compression


def default_scenarios() -> list[Scenario]:
    rollout = Scenario("Rollout: 10,000 pods in 60 s on 500 nodes, 10 secrets, 50 ServiceAccounts")
    return [
        rollout,
        replace(
            rollout,
            name="The 10-secret rollout with --batch-rate 0.16 (80% of the batch quota over 500 nodes)",
            batch_rate_share=0.8,
        ),
        replace(
            rollout,
            name="Rollout: 10,000 pods in 60 s on 500 nodes, 50 secrets",
            objects_per_pod=50,
            # half the compression: 50 signed requests a Mount are what this machine's CPU can carry
            compression=2.0,
        ),
        Scenario(
            "Steady state: 20,000 pods, 2-minute rotation poll, 10 objects (10% SSM)",
            pods=20_000,
            rollout_seconds=60.0,
            ssm_share=0.1,
            poll_interval=120.0,
            poll_rounds=2,
            compression=8.0,
        ),
        replace(
            rollout,
            name="Region outage: the 10-secret rollout, Secrets Manager and SSM down in us-east-1",
            outage=True,
        ),
    ]


@dataclass(frozen=True)
class Pod:
    name: str
    node: int
    service_account: str
    # Arrival, seconds of fleet time after the start.
    arrives: float
    secrets: tuple[str, ...]
    parameters: tuple[str, ...]


def secret_names(index: int) -> str:
    return f"fleet/s-{index:03d}"


def parameter_names(index: int) -> str:
    return f"/fleet/p-{index:02d}"


def _arrival(scenario: Scenario, fraction: float) -> float:
    if scenario.arrival == "step":
        return 0.0
    if scenario.arrival == "ramp":
        # rate rising linearly: the cumulative share grows with t squared
        return scenario.rollout_seconds * math.sqrt(fraction)
    return scenario.rollout_seconds * fraction


def plan_pods(scenario: Scenario, simulated_nodes: int, seed: int = 15) -> list[Pod]:
    """The pods of `simulated_nodes` nodes, in arrival order; ServiceAccounts drawn at random."""
    rng = random.Random(seed)
    count = scenario.pods_per_node * simulated_nodes
    parameters = round(scenario.objects_per_pod * scenario.ssm_share)
    secrets = scenario.objects_per_pod - parameters
    pods: list[Pod] = []
    for index in range(count):
        account = rng.randrange(scenario.service_accounts)
        start = account * 7
        pods.append(
            Pod(
                name=f"pod-{index:05d}",
                node=index % simulated_nodes,
                service_account=f"sa-{account:02d}",
                arrives=_arrival(scenario, (index + rng.random()) / count),
                secrets=tuple(secret_names((start + i) % SECRET_POOL) for i in range(secrets)),
                parameters=tuple(parameter_names((account + i) % PARAMETER_POOL) for i in range(parameters)),
            )
        )
    return sorted(pods, key=lambda pod: pod.arrives)
