"""`python -m fleet` (`make fleet`): every scenario for this provider and the Go pattern model,
side by side; writes fleet/results/fleet.{json,md} (`make readme-figures` puts that in the README)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.__main__ import _commit, _machine
from fleet.gopattern import GoDriver
from fleet.goprocs import GoProcessDriver, started_go_nodes
from fleet.ours import OursDriver
from fleet.quota import QuotaGate
from fleet.report import evaluate_targets, markdown, write_results
from fleet.run import Driver, Figures, run_scenario
from fleet.scenarios import PRIMARY, Scenario, default_scenarios, plan_pods
from fleet.world import World, started_nodes, started_world
from testkit.awsproxy import Fault

RESULTS = Path(__file__).resolve().parent / "results"


def smoke(scenario: Scenario) -> Scenario:
    """A few pods on 100 nodes, much compressed: for the smoke test."""
    return dataclasses.replace(
        scenario,
        nodes=100,
        pods=scenario.pods // 100 * 2,
        compression=8.0,
        poll_rounds=min(1, scenario.poll_rounds),
    )


def _prepare(world: World, scenario: Scenario, nodes: int, rtt: float) -> QuotaGate:
    world.reset_counts()
    gate = QuotaGate(scenario.scaled(nodes))
    state = world.proxy.state
    state.delay, state.gate = rtt, gate
    with world.kube.state.lock:
        world.kube.state.delay = rtt
    if scenario.outage:
        state.faults[(PRIMARY, "*")] = Fault(status=503, code="ServiceUnavailable", message="region outage")
    return gate


async def _one(world: World, scenario: Scenario, nodes: int, rtt: float, provider: str) -> Figures:
    pods = plan_pods(scenario, nodes)
    _prepare(world, scenario, nodes, rtt)
    driver: Driver
    if provider == "go-model":
        driver = GoDriver(world, scenario, nodes)
        try:
            return await run_scenario(driver, world, scenario, pods)
        finally:
            await driver.close()
    if provider == "go":
        with (
            started_go_nodes(world, scenario, nodes) as sockets,
            tempfile.TemporaryDirectory(prefix="fleet-go-", dir="/tmp") as targets,
        ):
            driver = GoProcessDriver(sockets, scenario, Path(targets))
            try:
                return await run_scenario(driver, world, scenario, pods)
            finally:
                await driver.close()
    async with started_nodes(world, scenario, nodes) as processes:
        driver = OursDriver(processes, scenario)
        try:
            return await run_scenario(driver, world, scenario, pods)
        finally:
            await driver.close()


async def run_all(
    world: World, scenarios: list[Scenario], nodes: int, rtt: float, *, go_model: bool = False
) -> list[dict[str, Any]]:
    entries = []
    for scenario in scenarios:
        factor = scenario.nodes / nodes
        entry: dict[str, Any] = {
            **dataclasses.asdict(scenario),
            "simulated_nodes": nodes,
            "pods_simulated": scenario.pods_per_node * nodes,
            "fleet_factor": factor,
        }
        for provider in ("ours", "go-model" if go_model else "go"):
            figures = await _one(world, scenario, nodes, rtt, provider)
            entry["ours" if provider == "ours" else "go"] = figures.as_dict(factor)
            sys.stderr.write(f"{scenario.name} / {figures.provider}: {figures.wall_seconds:.0f} s\n")
        entries.append(entry)
    return entries


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m fleet", description=__doc__)
    parser.add_argument("--nodes", type=int, default=4, help="provider processes, each one node (4-8)")
    parser.add_argument("--rtt-ms", type=float, default=10.0, help="round trip added to every request")
    parser.add_argument("--only", default="", help="run the scenarios whose name contains this")
    parser.add_argument("--smoke", action="store_true", help="a few pods per scenario, for the smoke test")
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of fleet.json and fleet.md")
    parser.add_argument(
        "--go-model",
        action="store_true",
        help="the Go side from its request-pattern model instead of real provider-aws-go processes",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scenarios = [s for s in default_scenarios() if args.only in s.name]
    if args.smoke:
        scenarios = [smoke(s) for s in scenarios]
    load = os.getloadavg()[0]
    began = time.monotonic()
    with started_world(max(s.service_accounts for s in scenarios)) as world:
        entries = asyncio.run(
            run_all(world, scenarios, args.nodes, args.rtt_ms / 1000, go_model=args.go_model)
        )
    result: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(),
            "load_average_1m": round(load, 2),
            "commit": _commit(),
            "rtt_ms": args.rtt_ms,
            "duration_s": round(time.monotonic() - began, 1),
            "smoke": args.smoke,
            "go_side": GoDriver.label if args.go_model else GoProcessDriver.label,
        },
        "scenarios": entries,
        "targets": evaluate_targets(entries),
    }
    json_path, md_path = write_results(result, args.out)
    sys.stdout.write(markdown(result))
    sys.stdout.write(f"\nwrote {json_path} and {md_path} in {result['meta']['duration_s']} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
