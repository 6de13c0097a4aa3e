"""`python -m bench.driverflow` (`make bench-e2e`): what a pod waits for its volume, driver included.

The seed's flow timed end to end for both providers: a real etcd + kube-apiserver (testkit.cluster), moto
in its own process behind the counting proxy with a delay added to every AWS request, and for each
provider the real Secrets Store CSI driver node plugin (v1.6.0) with that provider on aws.sock. A kubelet
stand-in (build/bin/csinode) publishes the volume of a new pod (its own ServiceAccount, so a cold identity)
holding 10 and 50 secrets, then, once the rotation poll interval has passed, publishes it again (the
kubelet's republish that the driver turns into a rotation poll of unchanged secrets). The times are those of
the whole NodePublishVolume call as the kubelet sees it, csinode's own start included (its `probe` time is
shown as the floor). Needs root (the driver mounts tmpfs in a private mount namespace) and `make e2e`'s
binaries. Prints the table and writes it to bench/results/driverflow.md; `make readme-figures` puts it in the
README.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3  # type: ignore[import-untyped]

from testkit.awsproxy import AwsProxy
from testkit.cluster import running_cluster
from testkit.csidriver import PodVolume
from testkit.driverflow import BIN, ROTATION_POLL, Flow, start_flow
from testkit.leakscan import LeakScan
from testkit.motoproc import moto_process
from testkit.requests import REGION, TEST_ACCESS_KEY, TEST_SECRET_KEY

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results" / "driverflow.md"
BEGIN, END = "<!-- driverflow:begin -->", "<!-- driverflow:end -->"
SECRET_COUNTS = (10, 50)


@dataclass
class Timings:
    seconds: list[float] = field(default_factory=list)
    requests: Counter[str] = field(default_factory=Counter)

    def cell(self) -> str:
        if not self.seconds:
            return "–"
        return f"{statistics.median(self.seconds) * 1000:.0f} ({max(self.seconds) * 1000:.0f})"

    def per_call(self) -> str:
        calls = len(self.seconds)
        return ", ".join(f"{op} {n / calls:g}" for op, n in sorted(self.requests.items())) or "none"


def _seed(moto: str, count: int) -> str:
    client = boto3.client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=moto,
        aws_access_key_id=TEST_ACCESS_KEY,
        aws_secret_access_key=TEST_SECRET_KEY,
    )
    names = [f"bench-{count}-{i:02d}" for i in range(count)]
    for name in names:
        client.create_secret(Name=name, SecretString=f"value of {name}")
    return "".join(f"- objectName: {name}\n  objectType: secretsmanager\n" for name in names)


def _timed_publish(flow: Flow, kind: str, volume: PodVolume, into: Timings) -> None:
    started = time.perf_counter()
    published = flow.publish(kind, volume)
    into.seconds.append(time.perf_counter() - started)
    into.requests.update(published.calls)
    if not published.result.ok:
        raise RuntimeError(f"{kind}: publish failed: {published.result}")


def _probe_floor(flow: Flow, runs: int) -> float:
    stack = next(iter(flow.stacks.values()))
    command = [str(BIN / "csinode"), "-endpoint", str(stack.driver.endpoint), "probe"]
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, capture_output=True, check=True, timeout=30)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure(runs: int, delay: float, workdir: Path) -> str:
    table: dict[tuple[str, str], Timings] = {}
    with ExitStack() as exits:
        host, port = exits.enter_context(moto_process())
        proxy = AwsProxy((host, port)).start()
        exits.callback(proxy.stop)
        proxy.state.delay = delay
        cluster = exits.enter_context(running_cluster())
        flow = start_flow(exits, cluster, proxy, workdir, LeakScan())
        floor = _probe_floor(flow, 10)
        for count in SECRET_COUNTS:
            parameters = {"objects": _seed(f"http://{host}:{port}", count)}
            for run in range(runs):
                volumes = flow.deploy(f"bench{count}-{run}", parameters)
                for kind, volume in volumes.items():
                    _timed_publish(
                        flow, kind, volume, table.setdefault((f"publish {count}", kind), Timings())
                    )
                time.sleep(ROTATION_POLL + 0.2)
                for kind, volume in volumes.items():
                    _timed_publish(flow, kind, volume, table.setdefault((f"poll {count}", kind), Timings()))
    return _markdown(table, runs, delay, floor)


def _markdown(table: dict[tuple[str, str], Timings], runs: int, delay: float, floor: float) -> str:
    commit = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=False
    ).stdout.strip()
    load = os.getloadavg()[0]
    lines = [
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()} (1-minute load average {load:.2f} at "
        f"the end), commit {commit}; {delay * 1000:.0f} ms added to every AWS request; {runs} pods per case; "
        f"driver v1.6.0 with --rotation-poll-interval={ROTATION_POLL:g}s. Median (max) ms of "
        "NodePublishVolume as the kubelet stand-in sees it; starting csinode and a Probe alone take "
        f"{floor * 1000:.0f} ms.",
        "",
        "| Case | Ours ms | Go provider ms | AWS requests per call, ours | AWS requests per call, Go |",
        "|---|---:|---:|---|---|",
    ]
    names = {
        "publish": "Publish of a new pod, {n} secrets",
        "poll": "Rotation poll (republish), {n} unchanged",
    }
    for count in SECRET_COUNTS:
        for key in ("publish", "poll"):
            ours, go = table[(f"{key} {count}", "python")], table[(f"{key} {count}", "go")]
            name = names[key].format(n=count)
            lines.append(f"| {name} | {ours.cell()} | {go.cell()} | {ours.per_call()} | {go.per_call()} |")
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.driverflow", description=__doc__)
    parser.add_argument("--runs", type=int, default=5, help="pods per case (default 5)")
    parser.add_argument(
        "--delay-ms", type=float, default=20.0, help="added to every AWS request (default 20)"
    )
    args = parser.parse_args(argv)
    with ExitStack() as exits:
        workdir = Path(exits.enter_context(tempfile.TemporaryDirectory(prefix="driverflow-")))
        table = measure(args.runs, args.delay_ms / 1000, workdir)
    print(table)
    RESULTS.write_text(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
