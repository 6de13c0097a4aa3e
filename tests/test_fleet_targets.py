"""The fleet report's targets on made-up figures just at and just over each limit."""

from __future__ import annotations

from typing import Any

import pytest

from fleet.report import evaluate_targets, markdown


def figures(requests: int, *, failed: int = 0, peak: float = 0.1) -> dict[str, Any]:
    return {
        "provider": "p",
        "mounts": 10,
        "mount_ms": {"p50": 10.0, "p99": 20.0},
        "failed_mounts": {"UNAVAILABLE": failed} if failed else {},
        "failed_polls": {},
        "gave_up": 0,
        "all_mounted_after_s": 60.0,
        "polls": 0,
        "poll_ms": {"p50": None, "p99": None},
        "requests": {"GetSecretValue": requests},
        "requests_total": requests,
        "fleet_requests_total": requests * 125,
        "throttles": {},
        "batch_fallbacks": 0,
        "kube_gets": 1,
        "fleet_kube_gets": 125,
        "peak_quota_use": {"GetSecretValue": peak, "DescribeSecret": peak / 2},
    }


def scenario(ours: dict[str, Any], *, poll_rounds: int = 0, outage: bool = False) -> dict[str, Any]:
    return {
        "name": "s",
        "poll_rounds": poll_rounds,
        "outage": outage,
        "ours": ours,
        "go": figures(1000),
        "fleet_factor": 125.0,
        "simulated_nodes": 4,
        "nodes": 500,
        "pods_simulated": 80,
        "compression": 4.0,
    }


def targets(entry: dict[str, Any]) -> dict[str, bool]:
    return {row["target"]: row["met"] for row in evaluate_targets([entry])}


@pytest.mark.parametrize(("requests", "met"), [(200, True), (201, False)])
def test_a_rollout_must_send_at_most_a_fifth_of_the_go_patterns_requests(requests: int, met: bool) -> None:
    assert targets(scenario(figures(requests))) == {
        "no failed Mount": True,
        "AWS requests <= 1/5 of the Go pattern's": met,
    }


@pytest.mark.parametrize(("peak", "met"), [(0.8, True), (0.81, False)])
def test_a_steady_state_keeps_every_quota_at_most_80_percent(peak: float, met: bool) -> None:
    assert targets(scenario(figures(5000, peak=peak), poll_rounds=2)) == {
        "no failed Mount": True,
        "every quota <= 80% in steady state": met,
    }


def test_one_failed_mount_misses_the_target_and_the_outage_has_no_request_target() -> None:
    assert targets(scenario(figures(5000, failed=1), outage=True)) == {"no failed Mount": False}


def test_the_markdown_names_the_model_and_every_quota() -> None:
    entry = scenario(figures(150))
    result = {
        "meta": {
            "date": "d",
            "machine": "m",
            "load_average_1m": 1.0,
            "commit": "c" * 40,
            "rtt_ms": 10.0,
            "duration_s": 1.0,
        },
        "scenarios": [entry],
        "targets": evaluate_targets([entry]),
    }
    text = markdown(result)
    assert "request-pattern model" in text
    for operation in (
        "BatchGetSecretValue",
        "GetSecretValue",
        "DescribeSecret",
        "GetParameters",
        "AssumeRoleWith",
    ):
        assert f"| {operation}" in text
    assert "| s | AWS requests <= 1/5 of the Go pattern's | 0.15 | met |" in text
