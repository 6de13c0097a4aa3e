"""Targets met or not, and the JSON and markdown the README shows."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = [
    "evaluate_targets",
    "markdown",
    "resource_lines",
    "with_bench_section",
    "with_section",
    "write_results",
]

# Issue 13: room to spare under the Go chart's limits (memory 100Mi, cpu 50m).
IDLE_LIMIT_MIB = 50.0
PEAK_LIMIT_MIB = 80.0
GROWTH_LIMIT_MIB = 2.0
READY_CPU_LIMIT_S = 0.4
WARM_CPU_LIMIT_MS = 2.0
POLL_CPU_LIMIT_MS = 40.0


def _case(figures: dict[str, Any], name: str) -> dict[str, Any]:
    for case in figures["cases"]:
        if case["name"] == name:
            return dict(case)
    raise KeyError(name)


def evaluate_targets(figures: dict[str, Any], delay: float) -> list[dict[str, Any]]:
    """Issue 6's latency and issue 13's resource targets, each with its limit, the measured value
    and met/not met."""
    rt = delay * 1000
    warm = _case(figures, "Mount 50 secrets, warm")
    cold = _case(figures, "Mount 50 secrets, cold")
    poll = _case(figures, "Rotation poll, 50 unchanged secrets, own check")
    burst = next(c for c in figures["cases"] if c["name"].startswith("Burst"))
    rss, resources = figures["rss"], figures["resources"]
    rows = [
        ("warm Mount of 50 secrets, median", "ms", warm["median_ms"], 3 * rt + 40),
        ("cold Mount of 50 secrets, median", "ms", cold["median_ms"], 5 * rt + 60),
        ("rotation poll of 50 unchanged, median", "ms", poll["median_ms"], 3 * rt + 40),
        ("AWS requests, warm Mount of 50 secrets", "requests", warm["aws_requests_per_mount"], 5),
        ("burst p99", "ms", burst["p99_ms"], 1000),
        ("RSS idle", "MiB", resources["idle_mib"], IDLE_LIMIT_MIB),
        ("RSS peak over the whole bench", "MiB", resources["peak_mib"], PEAK_LIMIT_MIB),
        (
            f"RSS growth from {rss['checkpoint_mounts']} to {rss['mounts']} Mounts",
            "MiB",
            rss["growth_mib"],
            GROWTH_LIMIT_MIB,
        ),
        ("CPU to become ready", "s", resources["ready_cpu_s"], READY_CPU_LIMIT_S),
        (
            "CPU per warm Mount of 10 secrets",
            "ms",
            figures["cpu_warm_10"]["cpu_ms_per_mount"],
            WARM_CPU_LIMIT_MS,
        ),
        (
            "CPU per rotation poll of 50 unchanged, own check",
            "ms",
            resources["poll_cpu_ms"],
            POLL_CPU_LIMIT_MS,
        ),
    ]
    return [
        {"target": name, "unit": unit, "measured": value, "limit": limit, "met": value <= limit}
        for name, unit, value, limit in rows
    ]


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:.1f}"


def _requests(per_mount: dict[str, float]) -> str:
    return ", ".join(f"{op} {n:.3g}" for op, n in per_mount.items()) or "none"


def resource_lines(figures: dict[str, Any]) -> list[str]:
    """Memory and CPU of the provider process, and what a 50m CPU limit allows."""
    resources, flight, rss = figures["resources"], figures["flight"], figures["rss"]
    rows = [
        ("RSS idle (socket ready, nothing mounted)", f"{resources['idle_mib']:.1f} MiB"),
        (
            "RSS after the latency, poll and burst cases above",
            f"{figures['cases'][-1]['rss_after_mib']:.1f} MiB",
        ),
        (
            f"RSS after {flight['mounts']} Mounts sent at once ({flight['service_accounts']} new "
            f"ServiceAccounts, {flight['most_in_flight']} in flight at most, every request held "
            f"{flight['delay_ms']:g} ms)",
            f"{flight['rss_after_mib']:.1f} MiB",
        ),
        (
            f"RSS before the Mounts of new pods ({rss['service_accounts_before']} ServiceAccounts so far, "
            "each an identity with its own credentials)",
            f"{rss['before_mib']:.1f} MiB",
        ),
        (
            f"RSS after {rss['checkpoint_mounts']} Mounts of new pods ({rss['service_accounts']} "
            "ServiceAccounts, a rotation poll every 4th Mount)",
            f"{rss['after_checkpoint_mib']:.1f} MiB",
        ),
        (f"RSS after {rss['mounts']} ({rss['polls']} polls)", f"{rss['after_all_mib']:.1f} MiB"),
        ("RSS growth between those two", f"{rss['growth_mib']:+.1f} MiB"),
        ("RSS peak over the whole bench (VmHWM)", f"{resources['peak_mib']:.1f} MiB"),
        ("CPU to become ready (process start to socket)", f"{resources['ready_cpu_s']:.2f} s"),
        ("CPU per Mount of a new pod, 1 secret (polls mixed in)", f"{rss['cpu_ms_per_mount']:.2f} ms"),
        ("CPU per Mount in flight (1,000 at once)", f"{flight['cpu_ms_per_mount']:.2f} ms"),
        ("CPU per rotation poll of 50 unchanged secrets, own check", f"{resources['poll_cpu_ms']:.1f} ms"),
    ]
    rows += [
        (f"Mounts/s a 50m CPU limit allows: {shape}", f"{rate:.1f}")
        for shape, rate in resources["mounts_per_second_at_50m"].items()
    ]
    rows.append(("CPU limit of this run (`--cpu-limit`)", resources["cpu_limit"]))
    return [
        "| Provider process | Measured |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
    ]


def go_lines(figures: dict[str, Any]) -> list[str]:
    """The Go provider's own process, measured in the same run (nothing when it was left out)."""
    go = figures.get("go")
    if go is None:
        return []
    resources, cpu = go["resources"], go["cpu_warm_10"]
    burst = next(c for c in go["cases"] if c["name"].startswith("Burst"))
    rows = [
        ("RSS idle (socket ready, nothing mounted)", f"{resources['idle_mib']:.1f} MiB"),
        ("RSS peak over its cases (VmHWM)", f"{resources['peak_mib']:.1f} MiB"),
        ("CPU to become ready (process start to socket)", f"{resources['ready_cpu_s']:.2f} s"),
        (
            f"CPU per warm Mount of 10 secrets (over {cpu['mounts']} Mounts)",
            f"{cpu['cpu_ms_per_mount']:.2f} ms",
        ),
        ("CPU per rotation poll of 50 unchanged secrets", f"{resources['poll_cpu_ms']:.1f} ms"),
        (
            f"{burst['name']}: wall time, p99, CPU per Mount",
            f"{burst['wall_ms']:.0f} ms, {_ms(burst['p99_ms'])} ms, {burst['cpu_ms_per_mount']:.1f} ms",
        ),
    ]
    return [
        f"| Go provider process (measured, {go['runs_per_case']} runs per case) | Measured |",
        "|---|---:|",
        *(f"| {name} | {value} |" for name, value in rows),
        "",
    ]


def markdown(result: dict[str, Any]) -> str:
    meta, figures = result["meta"], result["figures"]
    source = f"commit {meta['commit'][:12]}"
    if meta.get("uncommitted"):
        source += f" plus uncommitted changes to {', '.join(meta['uncommitted'])}"
    lines = [
        f"Measured {meta['date']} on {meta['machine']} "
        f"(1-minute load average {meta['load_average_1m_at_start']:g} at the start), {source}; "
        f"{meta['delay_ms']:g} ms added to every AWS and Kubernetes request (one round trip); "
        f"{meta['scale_note']} Go provider: {meta.get('go_provider', 'not run')}.",
        "",
        "| Case | Median ms | p99 ms | Go provider, measured: median ms (requests) | Ours / Go "
        "| Go model ms (requests), cross-check | Requests per Mount | AWS request ms | RSS after, MiB |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|",
    ]
    for case in figures["cases"]:
        ratio = "–" if case["ratio"] is None else f"{case['ratio']:.2f}"
        measured = (
            f"{case['go_measured_ms']:.0f} ({case['go_measured_requests']:.3g})"
            if "go_measured_ms" in case
            else "not measured"
        )
        lines.append(
            f"| {case['name']} | {_ms(case['median_ms'])} | {_ms(case['p99_ms'])} | {measured} | {ratio} | "
            f"{case['go_ms']:.0f} ({case['go_requests']}) | "
            f"{_requests(case['requests_per_mount'])} | {_ms(case['aws_request_median_ms'])} | "
            f"{case['rss_after_mib']:.1f} |"
        )
    burst = next(c for c in figures["cases"] if c["name"].startswith("Burst"))
    poll = _case(figures, "Rotation poll, 50 unchanged secrets, own check")
    cpu = figures["cpu_warm_10"]
    lines += [
        "",
        f"Rotation poll, own check: the {sum(poll['requests_per_mount'].values()):.0f} requests of a poll "
        f"reached the proxy within {poll['send_spread_ms']:.1f} ms of each other (median), and each took "
        f"{_ms(poll['aws_request_median_ms'])} ms there (median) against the {meta['delay_ms']:g} ms delay.",
        "",
        f"Burst wall time {burst['wall_ms']:.0f} ms, "
        f"{burst['cpu_ms_per_mount']:.1f} ms provider CPU per Mount; "
        f"warm Mount of 10 secrets {cpu['cpu_ms_per_mount']:.2f} ms CPU (over {cpu['mounts']} Mounts).",
        "",
        *resource_lines(figures),
        "",
        *go_lines(figures),
        "| Target | Limit | Measured | Met |",
        "|---|---:|---:|---|",
    ]
    for target in result["targets"]:
        unit = target["unit"]
        digits = 2 if unit == "s" else 1
        lines.append(
            f"| {target['target']} | ≤ {target['limit']:g} {unit} | {target['measured']:.{digits}f} {unit} | "
            f"{'met' if target['met'] else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def write_results(
    result: dict[str, Any],
    directory: Path,
    *,
    stem: str = "bench",
    render: Callable[[dict[str, Any]], str] = markdown,
) -> tuple[Path, Path]:
    """`result` as STEM.json and, rendered, as STEM.md in `directory` (the bench's, or the fleet's)."""
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / f"{stem}.json", directory / f"{stem}.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    md_path.write_text(render(result))
    return json_path, md_path


def with_bench_section(readme: str, table: str) -> str:
    """The README with the text between its bench markers replaced by `table`."""
    return with_section(readme, README_BEGIN, README_END, table)


def with_section(readme: str, begin_marker: str, end_marker: str, table: str) -> str:
    """The README with the text between `begin_marker` and `end_marker` replaced by `table`."""
    head, begin, rest = readme.partition(begin_marker)
    _, end, tail = rest.partition(end_marker)
    if not begin or not end:
        raise ValueError(f"the README has no {begin_marker} ... {end_marker} section")
    return f"{head}{begin_marker}\n{table}{end_marker}{tail}"
