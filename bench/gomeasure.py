"""The real Go provider measured in the bench's own run: the same cases, proxy, delay and fake cluster.

Its Mounts go over its socket as ours do (grpcio, as the driver's grpc-go); each pod's files are written
under a target directory of its own, as the driver writes them, because on a rotation poll the Go
provider reads an unchanged secret back from the pod's mounted file. Fewer runs per case than ours
(`Scale.go_runs`, `Scale.go_cpu_mounts`): it keeps nothing between Mounts, so every run costs the same,
and a Mount of 100 secrets takes 100 sequential round trips. The 1,000-in-flight and 12,000-Mount memory
cases run for ours only.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench import measure
from bench.driver import Driver
from bench.environment import cpu_seconds, status_mib

if TYPE_CHECKING:
    from bench.environment import Environment

__all__ = ["go_figures", "with_go"]


async def go_figures(env: Environment, scale: measure.Scale, delay: float) -> dict[str, Any]:
    """The Go provider's cases (named as ours), CPU per warm Mount of 10 secrets and its memory."""
    go = env.go
    assert go is not None
    go_scale = dataclasses.replace(
        scale, cold_runs=scale.go_runs, warm_runs=scale.go_runs, cpu_mounts=scale.go_cpu_mounts
    )
    resources: dict[str, Any] = {
        "idle_mib": status_mib(go.pid, "VmRSS"),
        "ready_cpu_s": cpu_seconds(go.pid),
    }
    with tempfile.TemporaryDirectory(prefix="pab-go-", dir="/tmp") as targets:
        driver = Driver(env, socket_path=go.socket_dir / "aws.sock", pid=go.pid, targets=Path(targets))
        try:
            env.set_delay(delay)
            cases = await measure.latency_cases(driver, go_scale, delay)
            cases += await measure.poll_cases(driver, go_scale, delay)
            cases.append(await measure.burst_case(driver, go_scale, delay))
            cpu = await measure.cpu_case(driver, go_scale, None)
        finally:
            await driver.close()
    resources["peak_mib"] = max(status_mib(go.pid, "VmHWM"), *(case.rss_after_mib for case in cases))
    poll = next(case for case in cases if case.name.endswith("own check"))
    resources["poll_cpu_ms"] = poll.extra["cpu_ms_per_mount"]
    return {
        "runs_per_case": scale.go_runs,
        "cases": [case.as_dict() for case in cases],
        "cpu_warm_10": cpu,
        "resources": resources,
    }


def with_go(figures: dict[str, Any], go: dict[str, Any]) -> dict[str, Any]:
    """Our figures with the Go provider's beside them: each case gets the Go median and requests of the
    case of the same name, and its ratio becomes ours over the measured Go median."""
    measured = {case["name"]: case for case in go["cases"]}
    for case in figures["cases"]:
        go_case = measured.get(case["name"])
        if go_case is not None and go_case["median_ms"] and case["median_ms"] is not None:
            case["go_measured_ms"] = go_case["median_ms"]
            case["go_measured_requests"] = sum(go_case["requests_per_mount"].values())
            case["ratio"] = case["median_ms"] / go_case["median_ms"]
    return {**figures, "go": go}
