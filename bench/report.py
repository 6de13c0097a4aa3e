"""Targets met or not, and the JSON and markdown the README shows."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["evaluate_targets", "markdown", "with_bench_section", "with_section", "write_results"]

RSS_LIMIT_MIB = 100.0
# RSS moves by a few pages between samples; more than this after the checkpoint counts as growth.
RSS_GROWTH_TOLERANCE_MIB = 5.0


def _case(figures: dict[str, Any], name: str) -> dict[str, Any]:
    for case in figures["cases"]:
        if case["name"] == name:
            return dict(case)
    raise KeyError(name)


def evaluate_targets(figures: dict[str, Any], delay: float) -> list[dict[str, Any]]:
    """Issue 6's targets, each with its limit, the measured value and met/not met."""
    rt = delay * 1000
    warm = _case(figures, "Mount 50 secrets, warm")
    cold = _case(figures, "Mount 50 secrets, cold")
    poll = _case(figures, "Rotation poll, 50 unchanged secrets, own check")
    burst = next(c for c in figures["cases"] if c["name"].startswith("Burst"))
    rss = figures["rss"]
    rows = [
        ("warm Mount of 50 secrets, median", "ms", warm["median_ms"], 3 * rt + 40),
        ("cold Mount of 50 secrets, median", "ms", cold["median_ms"], 5 * rt + 60),
        ("rotation poll of 50 unchanged, median", "ms", poll["median_ms"], 3 * rt + 40),
        ("AWS requests, warm Mount of 50 secrets", "requests", warm["aws_requests_per_mount"], 5),
        ("burst p99", "ms", burst["p99_ms"], 1000),
        ("CPU per warm Mount of 10 secrets", "ms", figures["cpu_warm_10"]["cpu_ms_per_mount"], 10),
        (f"RSS after {rss['mounts']} Mounts", "MiB", rss["after_all_mib"], RSS_LIMIT_MIB),
        (
            f"RSS growth after the first {rss['checkpoint_mounts']} Mounts",
            "MiB",
            rss["growth_mib"],
            RSS_GROWTH_TOLERANCE_MIB,
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


def markdown(result: dict[str, Any]) -> str:
    meta, figures = result["meta"], result["figures"]
    source = f"commit {meta['commit'][:12]}"
    if meta.get("uncommitted"):
        source += f" plus uncommitted changes to {', '.join(meta['uncommitted'])}"
    lines = [
        f"Measured {meta['date']} on {meta['machine']} "
        f"(1-minute load average {meta['load_average_1m_at_start']:g} at the start), {source}; "
        f"{meta['delay_ms']:g} ms added to every AWS and Kubernetes request (one round trip); "
        f"{meta['scale_note']}",
        "",
        "| Case | Median ms | p99 ms | Go provider ms (requests) | Ours / Go | Requests per Mount "
        "| AWS request ms |",
        "|---|---:|---:|---:|---:|---|---:|",
    ]
    for case in figures["cases"]:
        ratio = "–" if case["ratio"] is None else f"{case['ratio']:.2f}"
        lines.append(
            f"| {case['name']} | {_ms(case['median_ms'])} | {_ms(case['p99_ms'])} | "
            f"{case['go_ms']:.0f} ({case['go_requests']}) | {ratio} | "
            f"{_requests(case['requests_per_mount'])} | {_ms(case['aws_request_median_ms'])} |"
        )
    burst = next(c for c in figures["cases"] if c["name"].startswith("Burst"))
    poll = _case(figures, "Rotation poll, 50 unchanged secrets, own check")
    rss, cpu = figures["rss"], figures["cpu_warm_10"]
    lines += [
        "",
        f"Rotation poll, own check: the {sum(poll['requests_per_mount'].values()):.0f} requests of a poll "
        f"reached the proxy within {poll['send_spread_ms']:.1f} ms of each other (median), and each took "
        f"{_ms(poll['aws_request_median_ms'])} ms there (median) against the {meta['delay_ms']:g} ms delay.",
        "",
        f"Burst wall time {burst['wall_ms']:.0f} ms, "
        f"{burst['cpu_ms_per_mount']:.1f} ms provider CPU per Mount; "
        f"warm Mount of 10 secrets {cpu['cpu_ms_per_mount']:.1f} ms CPU (over {cpu['mounts']} Mounts); "
        f"RSS idle {rss['idle_mib']:.1f} MiB; {rss['before_mib']:.1f} MiB after the cases above "
        f"({rss['service_accounts_before']} ServiceAccounts, each an identity with its own credentials); "
        f"then, with 10 ServiceAccounts and 100 pods, {rss['after_checkpoint_mib']:.1f} MiB after "
        f"{rss['checkpoint_mounts']} Mounts and {rss['after_all_mib']:.1f} MiB after {rss['mounts']}.",
        "",
        "| Target | Limit | Measured | Met |",
        "|---|---:|---:|---|",
    ]
    for target in result["targets"]:
        unit = target["unit"]
        lines.append(
            f"| {target['target']} | ≤ {target['limit']:g} {unit} | {target['measured']:.1f} {unit} | "
            f"{'met' if target['met'] else 'NOT met'} |"
        )
    return "\n".join(lines) + "\n"


README_BEGIN = "<!-- bench:begin -->"
README_END = "<!-- bench:end -->"


def write_results(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    json_path, md_path = directory / "bench.json", directory / "bench.md"
    json_path.write_text(json.dumps(result, indent=2, sort_keys=True) + "\n")
    md_path.write_text(markdown(result))
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
