"""`make bench` with tiny counts, so the harness cannot rot: real provider process, moto, fake cluster."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from bench.__main__ import main
from bench.cgroup import PERIOD_US, cpu_quota
from bench.gomodel import go_cost
from bench.report import evaluate_targets


def test_go_cost_follows_the_go_providers_request_pattern() -> None:
    warm = go_cost(secrets=50, delay=0.02)
    assert warm.requests == {"GET serviceaccount": 1, "AssumeRoleWithWebIdentity": 1, "GetSecretValue": 50}
    assert abs(warm.seconds - 52 * 0.02) < 1e-9
    poll = go_cost(secrets=50, poll=True, delay=0.02)
    assert poll.requests["DescribeSecret"] == 50
    assert "GetSecretValue" not in poll.requests
    parameters = go_cost(parameters=25, region_given=False, delay=0.02)
    assert parameters.requests["GetParameters"] == 3
    assert parameters.requests["GET pod"] == parameters.requests["GET node"] == 1
    assert parameters.total_requests == 7


def test_bench_smoke_run_writes_every_figure(tmp_path: Path) -> None:
    assert main(["--smoke", "--delay-ms", "5", "--out", str(tmp_path)]) == 0

    result = json.loads((tmp_path / "bench.json").read_text())
    cases = {case["name"]: case for case in result["figures"]["cases"]}
    for name in ("Mount 1 secrets, cold", "Mount 50 secrets, warm", "Mount 25 parameters, warm"):
        assert cases[name]["runs"] >= 2
        assert cases[name]["median_ms"] > 0
    cold, warm = cases["Mount 50 secrets, cold"], cases["Mount 50 secrets, warm"]
    # Cold: one ServiceAccount read and one STS exchange per Mount; warm: neither.
    assert cold["requests_per_mount"]["GET serviceaccount"] == 1
    assert cold["requests_per_mount"]["AssumeRoleWithWebIdentity"] == 1
    assert "AssumeRoleWithWebIdentity" not in warm["requests_per_mount"]
    assert "GET serviceaccount" not in warm["requests_per_mount"]
    assert 1 <= warm["aws_requests_per_mount"] < 50
    assert warm["go_requests"] == 52
    assert cases["Mount 25 parameters, cold"]["go_requests"] == 5
    # A poll that checks for itself asks DescribeSecret about every secret; a shared one not at all.
    own_poll = cases["Rotation poll, 50 unchanged secrets, own check"]
    assert own_poll["requests_per_mount"] == {"DescribeSecret": 50}
    assert own_poll["go_requests"] == 52
    assert (
        "DescribeSecret"
        not in cases["Rotation poll, 50 unchanged secrets, shared check"]["requests_per_mount"]
    )
    burst = next(case for name, case in cases.items() if name.startswith("Burst"))
    assert burst["runs"] == 6
    assert burst["cpu_ms_per_mount"] > 0
    rss, resources, flight = (result["figures"][key] for key in ("rss", "resources", "flight"))
    assert 0 < resources["idle_mib"] <= rss["before_mib"] <= resources["peak_mib"]
    assert rss["service_accounts_before"] > 0
    assert rss["polls"] > 0 and rss["after_all_mib"] > 0
    assert flight["mounts"] == 20 and 1 <= flight["most_in_flight"] <= 20
    assert resources["ready_cpu_s"] > 0
    assert resources["cpu_limit"] == "none"
    assert set(resources["mounts_per_second_at_50m"]) == {
        "warm Mount of 10 secrets",
        "Mount of a new pod, 1 secret (polls mixed in)",
        "rotation poll of 50 unchanged secrets",
    }
    assert result["figures"]["cpu_warm_10"]["cpu_ms_per_mount"] > 0
    assert [target["target"] for target in result["targets"]] == [
        target["target"] for target in evaluate_targets(result["figures"], 0.02)
    ]
    assert "scaled down" in result["meta"]["scale_note"]

    # The real Go provider, measured in the same run: its requests per Mount are what the model says.
    go_cases = {case["name"]: case for case in result["figures"]["go"]["cases"]}
    for name in (
        "Mount 50 secrets, warm",
        "Mount 25 parameters, cold",
        "Rotation poll, 50 unchanged secrets, own check",
    ):
        assert sum(go_cases[name]["requests_per_mount"].values()) == cases[name]["go_requests"], name
        assert cases[name]["go_measured_ms"] > 0
    go_resources = result["figures"]["go"]["resources"]
    assert 0 < go_resources["idle_mib"] <= go_resources["peak_mib"]
    assert go_resources["poll_cpu_ms"] >= 0

    table = (tmp_path / "bench.md").read_text()
    assert "| Go provider process (measured" in table
    assert "| Mount 50 secrets, warm |" in table
    assert "| Target | Limit | Measured | Met |" in table
    assert "| RSS peak over the whole bench (VmHWM) |" in table


def figures_with(**measured: float) -> dict[str, Any]:
    """Made-up figures; the keyword values replace the measured value of each named case."""

    def case(name: str, **values: float) -> dict[str, Any]:
        return {"name": name, "median_ms": 1.0, "p99_ms": 1.0, "aws_requests_per_mount": 1.0, **values}

    return {
        "cases": [
            case("Mount 50 secrets, warm", median_ms=measured.get("warm", 1.0)),
            case("Mount 50 secrets, cold", median_ms=measured.get("cold", 1.0)),
            case("Rotation poll, 50 unchanged secrets, own check", median_ms=measured.get("poll", 1.0)),
            case("Burst: 100 pods", p99_ms=measured.get("burst", 1.0)),
        ],
        "cpu_warm_10": {"cpu_ms_per_mount": measured.get("warm_cpu", 1.0)},
        "rss": {"mounts": 12_000, "after_all_mib": 1.0, "checkpoint_mounts": 2000, "growth_mib": 0.0},
        "resources": {"idle_mib": 1.0, "peak_mib": 1.0, "ready_cpu_s": 0.1, "poll_cpu_ms": 1.0},
    }


@pytest.mark.parametrize(
    ("case", "target", "limit_ms"),
    [
        ("warm", "warm Mount of 50 secrets, median", 3 * 20 + 40),
        ("cold", "cold Mount of 50 secrets, median", 5 * 20 + 60),
        ("poll", "rotation poll of 50 unchanged, median", 3 * 20 + 40),
        ("burst", "burst p99", 1000),
        ("warm_cpu", "CPU per warm Mount of 10 secrets", 2),
    ],
)
def test_targets_are_issue_6s_limits_in_round_trips(case: str, target: str, limit_ms: float) -> None:
    def met(value: float) -> bool:
        rows = evaluate_targets(figures_with(**{case: value}), delay=0.020)
        return bool(next(row for row in rows if row["target"] == target)["met"])

    assert met(limit_ms) and not met(limit_ms + 0.1)


def test_cpu_limit_writes_cpu_max_and_starts_the_command_inside_the_cgroup(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("cpu memory\n")
    with cpu_quota(50, root=tmp_path) as quota:
        group = tmp_path / "provider-aws-bench-50m"
        assert (group / "cpu.max").read_text() == f"5000 {PERIOD_US}\n"
        assert quota.description == "50m (cgroup v2 cpu.max)"
        # The shell writes its own pid to the cgroup's process list, then becomes the command.
        shell = subprocess.run(
            quota.command(["sh", "-c", "echo $$"]), capture_output=True, text=True, check=True
        )
        assert (group / "cgroup.procs").read_text().strip() == shell.stdout.strip()
        (group / "cpu.max").unlink()
        (group / "cgroup.procs").unlink()
    assert not group.exists()


def test_cpu_limit_without_cgroup_v2_says_why(tmp_path: Path) -> None:
    with cpu_quota(50, root=tmp_path) as quota:
        assert quota.procs is None and quota.command(["true"]) == ["true"]
        assert quota.description == f"50m requested, not applied: {tmp_path} is not a cgroup v2 hierarchy"
    with cpu_quota(None, root=tmp_path) as quota:
        assert quota.description == "none"
