"""The measured cases: Mount latency cold and warm, a rotation poll, a burst, CPU and RSS."""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.driver import Driver
from bench.environment import Environment, profiled
from bench.gomodel import go_cost
from bench.load import flight_case, mounts_per_second, rss_case

__all__ = ["Case", "Scale", "run_all"]

MAX_SECRETS = 100
PARAMETERS = 25
# Every request of the flight case is held this long, so that its Mounts are all in flight at once.
FLIGHT_DELAY = 0.5


@dataclass(frozen=True)
class Scale:
    """How many runs each case gets; `make bench` uses the defaults, the smoke test tiny ones."""

    cold_runs: int = 15
    warm_runs: int = 40
    secret_counts: tuple[int, ...] = (1, 10, 50, 100)
    burst_service_accounts: int = 10
    burst_pods_per_account: int = 10
    burst_secrets: int = 10
    cpu_mounts: int = 300
    flight_mounts: int = 1000
    flight_service_accounts: int = 20
    rss_service_accounts: int = 20
    rss_checkpoint: int = 2000
    rss_mounts: int = 12_000
    rss_concurrency: int = 32
    # The Go provider's runs per latency and poll case, and its Mounts for CPU per warm Mount.
    go_runs: int = 5
    go_cpu_mounts: int = 40


def percentile_ms(seconds: list[float], q: float) -> float | None:
    """The nearest-rank `q` quantile of `seconds`, in milliseconds; None for no values."""
    if not seconds:
        return None
    ordered = sorted(seconds)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))] * 1000


@dataclass
class Case:
    name: str
    latencies: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)
    mounts: int = 0
    go_seconds: float = 0.0
    go_requests: int = 0
    # How long each AWS request took as the proxy saw it: the delay plus moto's own time.
    request_seconds: list[float] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    # The provider's RSS once the case has run: where in the bench memory grew.
    rss_after_mib: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        per_mount = {op: n / self.mounts for op, n in sorted(self.requests.items())} if self.mounts else {}
        median = statistics.median(self.latencies) if self.latencies else None
        return {
            "name": self.name,
            "runs": len(self.latencies),
            "median_ms": None if median is None else median * 1000,
            "p99_ms": percentile_ms(self.latencies, 0.99),
            "requests_per_mount": per_mount,
            "aws_requests_per_mount": sum(n for op, n in per_mount.items() if not op.startswith("GET ")),
            "aws_request_median_ms": (
                statistics.median(self.request_seconds) * 1000 if self.request_seconds else None
            ),
            "go_ms": self.go_seconds * 1000,
            "go_requests": self.go_requests,
            "ratio": None if median is None or not self.go_seconds else median / self.go_seconds,
            "rss_after_mib": self.rss_after_mib,
            **self.extra,
        }


def objects_yaml(secrets: int = 0, parameters: int = 0) -> str:
    lines = [f"- objectName: bench/s-{i:03d}\n  objectType: secretsmanager\n" for i in range(secrets)]
    lines += [f"- objectName: /bench/p-{i:02d}\n  objectType: ssmparameter\n" for i in range(parameters)]
    return "".join(lines)


def seed(env: Environment) -> None:
    secrets = env.seed("secretsmanager")
    for i in range(MAX_SECRETS):
        secrets.create_secret(Name=f"bench/s-{i:03d}", SecretString=f"value-{i:03d}-" + "x" * 64)
    ssm = env.seed("ssm")
    for i in range(PARAMETERS):
        ssm.put_parameter(Name=f"/bench/p-{i:02d}", Value=f"parameter-{i:02d}", Type="String")


async def _sequential(
    driver: Driver,
    case: Case,
    runs: int,
    objects: str,
    *,
    cold: bool,
    current: Sequence[tuple[str, str]] = (),
) -> None:
    account = "" if cold else driver.new_service_account("warm")
    if not cold:
        await driver.mount("warm-up", account, objects)  # makes the ServiceAccount warm
    before, calls = driver.counts(), driver.calls_so_far()
    for run in range(runs):
        if cold:
            account = driver.new_service_account("cold")
        elapsed, _ = await driver.mount(f"pod-{run}", account, objects, current)
        case.latencies.append(elapsed)
    case.requests = driver.counts() - before
    case.request_seconds = driver.call_seconds(calls)
    case.mounts = runs
    case.rss_after_mib = driver.rss_mib()


async def latency_cases(driver: Driver, scale: Scale, delay: float) -> list[Case]:
    cases: list[Case] = []
    shapes = [(f"{n} secrets", n, 0) for n in scale.secret_counts] + [
        (f"{PARAMETERS} parameters", 0, PARAMETERS)
    ]
    for label, secrets, parameters in shapes:
        objects = objects_yaml(secrets, parameters)
        go = go_cost(secrets=secrets, parameters=parameters, delay=delay)
        for temperature, runs in (("cold", scale.cold_runs), ("warm", scale.warm_runs)):
            case = Case(f"Mount {label}, {temperature}", go_seconds=go.seconds, go_requests=go.total_requests)
            await _sequential(driver, case, runs, objects, cold=temperature == "cold")
            cases.append(case)
    return cases


async def poll_cases(driver: Driver, scale: Scale, delay: float) -> list[Case]:
    """Polls that check for themselves, then polls that share a check made within the window.

    The driver polls every pod every couple of minutes, longer than the coalescing window, so
    the first case is what a poll costs on its own; the second is what pods of one
    ServiceAccount polling at once cost.
    """
    objects = objects_yaml(50)
    go = go_cost(secrets=50, poll=True, delay=delay)
    own = Case(
        "Rotation poll, 50 unchanged secrets, own check",
        go_seconds=go.seconds,
        go_requests=go.total_requests,
    )
    shared = Case(
        "Rotation poll, 50 unchanged secrets, shared check",
        go_seconds=go.seconds,
        go_requests=go.total_requests,
    )
    own_requests: Counter[str] = Counter()
    spreads: list[float] = []
    cpu: list[float] = []
    for run in range(scale.cold_runs):
        account = driver.new_service_account("poll")  # its own identity: nothing shared yet
        _, first = await driver.mount(f"poll-{run}", account, objects)
        current = [(v.id, v.version) for v in first.object_version]
        before, calls, cpu_before = driver.counts(), driver.calls_so_far(), driver.cpu_seconds()
        elapsed, _ = await driver.mount(f"poll-{run}", account, objects, current)
        cpu.append(driver.cpu_seconds() - cpu_before)
        own.latencies.append(elapsed)
        own_requests += driver.counts() - before
        own.request_seconds += driver.call_seconds(calls)
        spreads.append(driver.start_spread(calls))
    own.requests, own.mounts = own_requests, scale.cold_runs
    # How close together the checks left the provider: the rest of a poll is AWS's (moto's) time.
    own.extra = {
        "send_spread_ms": statistics.median(spreads) * 1000,
        # CPU clock ticks are 10 ms: the mean over the runs, not each run's own figure.
        "cpu_ms_per_mount": statistics.mean(cpu) * 1000,
    }
    before, calls = driver.counts(), driver.calls_so_far()
    for run in range(scale.warm_runs):
        elapsed, _ = await driver.mount(f"poll-{run % 3}", account, objects, current)
        shared.latencies.append(elapsed)
    shared.requests = driver.counts() - before
    shared.request_seconds = driver.call_seconds(calls)
    shared.mounts = scale.warm_runs
    own.rss_after_mib = shared.rss_after_mib = driver.rss_mib()
    return [own, shared]


async def burst_case(driver: Driver, scale: Scale, delay: float) -> Case:
    objects = objects_yaml(scale.burst_secrets)
    accounts = [driver.new_service_account("burst") for _ in range(scale.burst_service_accounts)]
    pods = [
        (f"burst-{a}-{p}", account)
        for a, account in enumerate(accounts)
        for p in range(scale.burst_pods_per_account)
    ]
    go = go_cost(secrets=scale.burst_secrets, delay=delay)
    case = Case(
        f"Burst: {len(pods)} pods ({len(accounts)} ServiceAccounts, "
        f"{scale.burst_secrets} secrets each), cold",
        go_seconds=go.seconds,
        go_requests=go.total_requests,
    )
    before, cpu_before, calls = driver.counts(), driver.cpu_seconds(), driver.calls_so_far()
    start = time.perf_counter()
    results = await asyncio.gather(*(driver.mount(pod, account, objects) for pod, account in pods))
    wall = time.perf_counter() - start
    case.latencies = [elapsed for elapsed, _ in results]
    case.requests = driver.counts() - before
    case.request_seconds = driver.call_seconds(calls)
    case.mounts = len(pods)
    case.extra = {
        "wall_ms": wall * 1000,
        "cpu_ms_per_mount": (driver.cpu_seconds() - cpu_before) * 1000 / len(pods),
    }
    case.rss_after_mib = driver.rss_mib()
    return case


async def cpu_case(driver: Driver, scale: Scale, profile: Path | None) -> dict[str, Any]:
    objects = objects_yaml(10)
    account = driver.new_service_account("cpu")
    await driver.mount("cpu-0", account, objects)
    with profiled(driver.pid, profile):
        cpu_before = driver.cpu_seconds()
        for run in range(scale.cpu_mounts):
            await driver.mount(f"cpu-{run % 10}", account, objects)
        cpu = driver.cpu_seconds() - cpu_before
    return {"mounts": scale.cpu_mounts, "cpu_ms_per_mount": cpu * 1000 / scale.cpu_mounts}


async def run_all(
    env: Environment, scale: Scale, delay: float, *, profile: Path | None = None
) -> dict[str, Any]:
    """Every case in turn on one provider process; returns the figures as plain data."""
    resources: dict[str, Any] = {
        "idle_mib": env.rss_mib(),
        "ready_cpu_s": env.ready_cpu_seconds,
        "cpu_limit": env.cpu_limit,
    }
    seed(env)
    driver = Driver(env)
    try:
        env.set_delay(delay)
        cases = await latency_cases(driver, scale, delay)
        cases += await poll_cases(driver, scale, delay)
        burst = await burst_case(driver, scale, delay)
        cases.append(burst)
        cpu = await cpu_case(driver, scale, profile)
        flight = await flight_case(
            driver, objects_yaml(1), scale.flight_mounts, scale.flight_service_accounts, FLIGHT_DELAY
        )
        # RSS depends on what is kept, not on waiting: the many Mounts run without the delay.
        env.set_delay(0.0)
        rss = await rss_case(
            driver,
            objects_yaml(1),
            accounts=scale.rss_service_accounts,
            checkpoint=scale.rss_checkpoint,
            mounts=scale.rss_mounts,
            concurrency=scale.rss_concurrency,
        )
    finally:
        await driver.close()
    # VmHWM is the kernel's high-water mark; a sample can run ahead of its last update.
    samples = [case.rss_after_mib for case in cases] + [flight["rss_after_mib"], rss["after_all_mib"]]
    resources["peak_mib"] = max(env.peak_rss_mib(), *samples)
    poll = next(case for case in cases if case.name.endswith("own check"))
    resources["poll_cpu_ms"] = poll.extra["cpu_ms_per_mount"]
    resources["mounts_per_second_at_50m"] = {
        "warm Mount of 10 secrets": mounts_per_second(cpu["cpu_ms_per_mount"]),
        "Mount of a new pod, 1 secret (polls mixed in)": mounts_per_second(rss["cpu_ms_per_mount"]),
        "rotation poll of 50 unchanged secrets": mounts_per_second(resources["poll_cpu_ms"]),
    }
    return {
        "cases": [case.as_dict() for case in cases],
        "cpu_warm_10": cpu,
        "flight": flight,
        "rss": rss,
        "resources": resources,
    }
