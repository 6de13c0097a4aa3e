"""`python -m bench`: run every case, print the table, write bench/results/bench.{json,md}.

The README is left alone: `make readme-figures` rewrites its tables from the recorded results."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.environment import started
from bench.gomeasure import go_figures, with_go
from bench.measure import Scale, run_all
from bench.report import evaluate_targets, markdown, write_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SMOKE = Scale(
    cold_runs=2,
    warm_runs=3,
    secret_counts=(1, 50),
    burst_service_accounts=2,
    burst_pods_per_account=3,
    burst_secrets=3,
    cpu_mounts=5,
    flight_mounts=20,
    flight_service_accounts=2,
    rss_service_accounts=2,
    rss_checkpoint=10,
    rss_mounts=20,
    rss_concurrency=4,
)


def _commit(root: Path = ROOT) -> str:
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return head


def _uncommitted(root: Path = ROOT) -> list[str]:
    """Provider files that differ from the commit: the process runs the working tree."""
    try:
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", "provider_aws"],
            cwd=root,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    return sorted(line[3:] for line in status.splitlines() if line.strip())


def _machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    cores = len(os.sched_getaffinity(0))
    return f"{model}, {cores} cores, Linux {platform.release()}, Python {platform.python_version()}"


def _scale_note(scale: Scale) -> str:
    full = Scale()
    if scale.rss_mounts < full.rss_mounts:
        return (
            f"scaled down: RSS after {scale.rss_mounts} Mounts instead of {full.rss_mounts}, "
            f"{scale.cold_runs} cold and {scale.warm_runs} warm runs per case."
        )
    return f"{scale.cold_runs} cold and {scale.warm_runs} warm runs per case."


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--delay-ms", type=float, default=20.0, help="round trip added to each request")
    parser.add_argument("--smoke", action="store_true", help="tiny counts, for the smoke test")
    parser.add_argument("--rss-mounts", type=int, help="Mounts before the last RSS sample (12000)")
    parser.add_argument(
        "--cpu-limit",
        type=int,
        metavar="MILLICORES",
        help="run the provider under this CPU quota (cgroup v2 cpu.max), e.g. 50 as the Go chart's limit",
    )
    parser.add_argument(
        "--profile", type=Path, help="py-spy samples (raw, flamegraph input) of the warm 10-secret Mounts"
    )
    parser.add_argument(
        "--provider-source",
        type=Path,
        help="run the provider_aws package of this tree (a worktree of an earlier commit) instead",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="directory of bench.json and bench.md")
    parser.add_argument(
        "--no-go", action="store_true", help="leave out the real Go provider (build/bin/provider-aws-go)"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    scale = SMOKE if args.smoke else Scale()
    if args.rss_mounts is not None:
        scale = dataclasses.replace(scale, rss_mounts=args.rss_mounts)
    delay = args.delay_ms / 1000
    load = os.getloadavg()[0]  # other work on the machine shows in every latency
    began = time.monotonic()
    source = args.provider_source or ROOT
    with started(args.cpu_limit, args.provider_source, go=not args.no_go) as env:
        figures = asyncio.run(run_all(env, scale, delay, profile=args.profile))
        if env.go is not None:
            figures = with_go(figures, asyncio.run(go_figures(env, scale, delay)))
    result: dict[str, Any] = {
        "meta": {
            "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine(),
            "load_average_1m_at_start": round(load, 2),
            "commit": _commit(source),
            "uncommitted": _uncommitted(source),
            "delay_ms": args.delay_ms,
            "go_provider": "not run (--no-go)" if args.no_go else "3.1.1, built by `make goprovider`",
            "scale": dataclasses.asdict(scale),
            "scale_note": _scale_note(scale),
            "duration_s": round(time.monotonic() - began, 1),
        },
        "figures": figures,
        "targets": evaluate_targets(figures, delay),
    }
    json_path, md_path = write_results(result, args.out)
    sys.stdout.write(markdown(result))
    sys.stdout.write(f"\nwrote {json_path} and {md_path} in {result['meta']['duration_s']} s\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
