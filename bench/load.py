"""Memory and CPU under load: 1,000 Mounts in flight at once, then 12,000 Mounts of new pods.

Both run on the provider process the latency cases used, so what they keep adds to what is there.
Memory is VmRSS (what a container's memory limit counts) and VmHWM (its high-water mark).
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from bench.driver import Driver

__all__ = ["MILLICORES", "flight_case", "mounts_per_second", "rss_case"]

# The Go chart's CPU limit: 50m is 50 ms of CPU per second.
MILLICORES = 50
# A poll every this many Mounts in the RSS run; the rest are new pods.
POLL_EVERY = 4
# Pods whose versions are kept for a later poll.
POLLED_PODS = 200


def mounts_per_second(cpu_ms_per_mount: float, millicores: int = MILLICORES) -> float:
    """How many Mounts a second `millicores` of CPU allow at this cost each."""
    return millicores / cpu_ms_per_mount if cpu_ms_per_mount > 0 else 0.0


async def flight_case(
    driver: Driver, objects: str, mounts: int, accounts: int, delay: float
) -> dict[str, Any]:
    """`mounts` new pods of `accounts` fresh ServiceAccounts, all sent at once over the driver's
    connections, with every request held `delay`: they pile up inside the provider."""
    names = [driver.new_service_account("flight") for _ in range(accounts)]
    outstanding = most = 0

    async def one(index: int) -> None:
        nonlocal outstanding, most
        outstanding += 1
        most = max(most, outstanding)
        try:
            await driver.mount(f"flight-{index}", names[index % accounts], objects, connection=index)
        finally:
            outstanding -= 1

    previous = driver.env.proxy.state.delay
    driver.env.set_delay(delay)
    cpu_before, start = driver.cpu_seconds(), time.perf_counter()
    try:
        await asyncio.gather(*(one(index) for index in range(mounts)))
    finally:
        driver.env.set_delay(previous)
    return {
        "mounts": mounts,
        "service_accounts": accounts,
        "delay_ms": delay * 1000,
        "most_in_flight": most,
        "wall_ms": (time.perf_counter() - start) * 1000,
        "cpu_ms_per_mount": (driver.cpu_seconds() - cpu_before) * 1000 / mounts,
        "rss_after_mib": driver.rss_mib(),
        "peak_rss_mib": driver.peak_rss_mib(),
    }


class _Run:
    """Mounts of new pods, every `POLL_EVERY`th a rotation poll of a pod mounted before."""

    def __init__(self, driver: Driver, objects: str, accounts: Sequence[str]) -> None:
        self.driver = driver
        self.objects = objects
        self.accounts = accounts
        self.polls = 0
        self._mounted: OrderedDict[int, list[tuple[str, str]]] = OrderedDict()

    async def mount(self, index: int) -> None:
        account = self.accounts[index % len(self.accounts)]
        if index % POLL_EVERY == POLL_EVERY - 1 and self._mounted:
            pod, current = self._mounted.popitem(last=False)
            await self.driver.mount(
                f"rss-{pod}", self.accounts[pod % len(self.accounts)], self.objects, current
            )
            self.polls += 1
            return
        _, reply = await self.driver.mount(f"rss-{index}", account, self.objects)
        self._mounted[index] = [(v.id, v.version) for v in reply.object_version]
        while len(self._mounted) > POLLED_PODS:
            self._mounted.popitem(last=False)

    async def many(self, start: int, stop: int, concurrency: int) -> None:
        queue = iter(range(start, stop))

        async def worker() -> None:
            for index in queue:
                await self.mount(index)

        await asyncio.gather(*(worker() for _ in range(concurrency)))


async def rss_case(
    driver: Driver, objects: str, *, accounts: int, checkpoint: int, mounts: int, concurrency: int
) -> dict[str, Any]:
    """RSS after `checkpoint` and after `mounts` Mounts (new pods, polls mixed in) of `accounts`
    fresh ServiceAccounts; the growth between the two is what a long-running provider keeps."""
    # Every case before this one used fresh ServiceAccounts: each is an identity of its own.
    before_mib, identities = driver.rss_mib(), driver.service_accounts
    run = _Run(driver, objects, [driver.new_service_account("rss") for _ in range(accounts)])
    checkpoint = min(checkpoint, mounts)
    cpu_start = driver.cpu_seconds()
    await run.many(0, checkpoint, concurrency)
    after_checkpoint = driver.rss_mib()
    cpu_before = driver.cpu_seconds()
    await run.many(checkpoint, mounts, concurrency)
    # CPU per Mount past the checkpoint, once the caches are warm; over the whole run if nothing is.
    cpu, counted = driver.cpu_seconds() - cpu_before, mounts - checkpoint
    if counted == 0:
        cpu, counted = cpu_before - cpu_start, checkpoint
    after_all = driver.rss_mib()
    return {
        "before_mib": before_mib,
        "service_accounts_before": identities,
        "service_accounts": accounts,
        "checkpoint_mounts": checkpoint,
        "after_checkpoint_mib": after_checkpoint,
        "mounts": mounts,
        "polls": run.polls,
        "after_all_mib": after_all,
        "growth_mib": after_all - after_checkpoint,
        "cpu_ms_per_mount": cpu * 1000 / max(1, counted),
    }
