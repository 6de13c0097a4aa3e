"""One scenario for one provider: pods arrive on the curve, kubelet retries failed Mounts, the
driver polls; then what the proxy, the quota gate and the fake Kubernetes API counted."""

from __future__ import annotations

import asyncio
import random
import statistics
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Protocol

from bench.measure import percentile_ms
from fleet.ours import Outcome, Versions
from fleet.quota import QuotaGate
from fleet.scenarios import Pod, Scenario
from fleet.world import World

__all__ = ["Driver", "Figures", "run_scenario"]

# kubelet retries a failed NodePublishVolume after 0.5 s, doubling up to about 2 minutes.
KUBELET_FIRST_RETRY, KUBELET_MAX_RETRY = 0.5, 122.0
MAX_ATTEMPTS = 8
# Peak quota use is the busiest window of this many seconds of fleet time.
PEAK_WINDOW = 10.0


class Driver(Protocol):
    label: str

    async def mount(self, pod: Pod, current: Versions) -> Outcome: ...

    async def close(self) -> None: ...


@dataclass
class Figures:
    provider: str
    latencies: list[float] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    gave_up: int = 0
    mounted_after: float | None = None
    poll_latencies: list[float] = field(default_factory=list)
    poll_failures: Counter[str] = field(default_factory=Counter)
    requests: Counter[str] = field(default_factory=Counter)
    throttles: Counter[str] = field(default_factory=Counter)
    fallbacks: int = 0
    kube_gets: int = 0
    peak_use: dict[str, float] = field(default_factory=dict)
    wall_seconds: float = 0.0

    def as_dict(self, fleet_factor: float) -> dict[str, Any]:
        aws = {op: n for op, n in self.requests.items() if op != "unknown"}
        return {
            "provider": self.provider,
            "mounts": len(self.latencies),
            "mount_ms": {
                "p50": percentile_ms(self.latencies, 0.5),
                "p95": percentile_ms(self.latencies, 0.95),
                "p99": percentile_ms(self.latencies, 0.99),
                "max": percentile_ms(self.latencies, 1.0),
                "mean": statistics.fmean(self.latencies) * 1000 if self.latencies else None,
            },
            "failed_mounts": dict(self.failures),
            "gave_up": self.gave_up,
            "all_mounted_after_s": self.mounted_after,
            "polls": len(self.poll_latencies),
            "poll_ms": {
                "p50": percentile_ms(self.poll_latencies, 0.5),
                "p99": percentile_ms(self.poll_latencies, 0.99),
            },
            "failed_polls": dict(self.poll_failures),
            "requests": dict(sorted(aws.items())),
            "requests_total": sum(aws.values()),
            "fleet_requests_total": round(sum(aws.values()) * fleet_factor),
            "throttles": dict(self.throttles),
            "batch_fallbacks": self.fallbacks,
            "kube_gets": self.kube_gets,
            "fleet_kube_gets": round(self.kube_gets * fleet_factor),
            "peak_quota_use": self.peak_use,
            "wall_seconds": round(self.wall_seconds, 1),
        }


async def _mount_with_retries(driver: Driver, pod: Pod, figures: Figures, c: float) -> Versions | None:
    wait = KUBELET_FIRST_RETRY
    for _ in range(MAX_ATTEMPTS):
        seconds, status, versions = await driver.mount(pod, ())
        if status == "OK":
            figures.latencies.append(seconds)
            return versions
        figures.failures[status] += 1
        await asyncio.sleep(wait / c)
        wait = min(KUBELET_MAX_RETRY, wait * 2)
    figures.gave_up += 1
    return None


async def _rollout(
    driver: Driver, pods: list[Pod], scenario: Scenario, figures: Figures
) -> dict[str, Versions]:
    c = scenario.compression
    start = time.monotonic()
    done: list[float] = []
    mounted: dict[str, Versions] = {}

    async def one(pod: Pod) -> None:
        await asyncio.sleep(max(0.0, start + pod.arrives / c - time.monotonic()))
        versions = await _mount_with_retries(driver, pod, figures, c)
        if versions is not None:
            mounted[pod.name] = versions
            done.append(time.monotonic())

    await asyncio.gather(*(one(pod) for pod in pods))
    if len(done) == len(pods):
        figures.mounted_after = (max(done) - start) * c
    return mounted


async def _polls(
    driver: Driver, pods: list[Pod], mounted: dict[str, Versions], scenario: Scenario, figures: Figures
) -> None:
    """Each node's driver polls its pods one after another every interval, from a random phase."""
    c = scenario.compression
    interval = scenario.poll_interval / c
    rng = random.Random(7)
    start = time.monotonic()

    async def node(own: list[Pod], phase: float) -> None:
        for round_ in range(scenario.poll_rounds):
            await asyncio.sleep(max(0.0, start + phase + round_ * interval - time.monotonic()))
            for pod in own:
                seconds, status, versions = await driver.mount(pod, mounted.get(pod.name, ()))
                if status == "OK":
                    figures.poll_latencies.append(seconds)
                    mounted[pod.name] = versions
                else:
                    figures.poll_failures[status] += 1

    by_node: dict[int, list[Pod]] = {}
    for pod in pods:
        by_node.setdefault(pod.node, []).append(pod)
    await asyncio.gather(*(node(own, rng.uniform(0, interval)) for own in by_node.values()))


async def run_scenario(driver: Driver, world: World, scenario: Scenario, pods: list[Pod]) -> Figures:
    """Counts are taken from the proxy and the fake API over the measured phase only: the
    rollout, or for a steady state the polls after it."""
    figures = Figures(driver.label)
    c = scenario.compression
    gate = world.proxy.state.gate
    assert isinstance(gate, QuotaGate)
    began = time.monotonic()
    mounted = await _rollout(driver, pods, scenario, figures)
    since, calls, throttles, kube = began, 0, Counter[str](), 0
    if scenario.poll_rounds:
        since = time.monotonic()
        with world.proxy.state.lock:
            calls = len(world.proxy.state.calls)
        throttles, kube = Counter(gate.throttled), world.kube.state.count()
        await _polls(driver, pods, mounted, scenario, figures)
    with world.proxy.state.lock:
        measured = world.proxy.state.calls[calls:]
    figures.requests = Counter(call.operation for call in measured)
    figures.fallbacks = sum(
        1 for call in measured if call.operation == "BatchGetSecretValue" and call.status != 200
    )
    figures.throttles = Counter(gate.throttled) - throttles
    figures.kube_gets = world.kube.state.count() - kube
    figures.peak_use = {
        quota.operation: round(gate.peak_use(quota.operation, since, PEAK_WINDOW / c), 3)
        for quota in gate.quotas
    }
    figures.wall_seconds = time.monotonic() - began
    return figures
