"""The fleet tables: quotas, each scenario side by side, the targets; JSON and markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bench import report as bench_report
from bench.report import with_section
from fleet.quota import QUOTAS

__all__ = [
    "README_BEGIN",
    "README_END",
    "evaluate_targets",
    "markdown",
    "with_fleet_section",
    "write_results",
]

README_BEGIN = "<!-- fleet:begin -->"
README_END = "<!-- fleet:end -->"
STEADY_LIMIT = 0.8
REQUEST_RATIO_LIMIT = 0.2


def _ms(value: float | None) -> str:
    return "–" if value is None else f"{value:,.0f}"


def _counts(counts: dict[str, Any], factor: float = 1.0) -> str:
    return ", ".join(f"{op} {round(n * factor):,}" for op, n in sorted(counts.items()) if n) or "none"


def _peaks(peaks: dict[str, float]) -> str:
    shown = {op: use for op, use in peaks.items() if use >= 0.005}
    return ", ".join(f"{op} {use:.0%}" for op, use in sorted(shown.items(), key=lambda kv: -kv[1])) or "~0%"


def evaluate_targets(scenarios: list[dict[str, Any]]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for entry in scenarios:
        ours, go = entry["ours"], entry["go"]
        failed = sum(ours["failed_mounts"].values()) + sum(ours["failed_polls"].values()) + ours["gave_up"]
        rows.append(
            {"scenario": entry["name"], "target": "no failed Mount", "measured": failed, "met": failed == 0}
        )
        if entry["poll_rounds"]:
            peak = max(ours["peak_quota_use"].values())
            rows.append(
                {
                    "scenario": entry["name"],
                    "target": "every quota <= 80% in steady state",
                    "measured": f"{peak:.0%}",
                    "met": peak <= STEADY_LIMIT,
                }
            )
        elif not entry["outage"]:
            ratio = ours["requests_total"] / max(1, go["requests_total"])
            rows.append(
                {
                    "scenario": entry["name"],
                    "target": "AWS requests <= 1/5 of the Go pattern's",
                    "measured": f"{ratio:.2f}",
                    "met": ratio <= REQUEST_RATIO_LIMIT,
                }
            )
    return rows


def _scenario_lines(entry: dict[str, Any]) -> list[str]:
    factor = entry["fleet_factor"]
    lines = [
        f"**{entry['name']}** — {entry['simulated_nodes']} of {entry['nodes']} nodes simulated, "
        f"{entry['pods_simulated']} pods, time compressed {entry['compression']:g}x",
        "",
        "| Provider | Mounts OK | Failed Mounts | Mount p50 / p99 ms | All mounted after (s) "
        "| AWS requests (fleet) | By operation (fleet) | Throttles (fleet) | Batch fallbacks (fleet) "
        "| Peak quota use | Kube GETs (fleet) |",
        "|---|---:|---|---:|---:|---:|---|---|---:|---|---:|",
    ]
    for key in ("ours", "go"):
        f = entry[key]
        failed = _counts(f["failed_mounts"]) if f["failed_mounts"] else "0"
        if f["gave_up"]:
            failed += f" ({f['gave_up']} pods never mounted)"
        latency = f"{_ms(f['mount_ms']['p50'])} / {_ms(f['mount_ms']['p99'])}"
        if f["polls"]:
            latency += f"; polls {_ms(f['poll_ms']['p50'])} / {_ms(f['poll_ms']['p99'])}"
            failed += f"; polls failed {sum(f['failed_polls'].values())}"
        after = "–" if f["all_mounted_after_s"] is None else f"{f['all_mounted_after_s']:.0f}"
        lines.append(
            f"| {f['provider']} | {f['mounts']} | {failed} | {latency} | {after} | "
            f"{f['fleet_requests_total']:,} | {_counts(f['requests'], factor)} | "
            f"{_counts(f['throttles'], factor)} | {round(f['batch_fallbacks'] * factor):,} | "
            f"{_peaks(f['peak_quota_use'])} | {f['fleet_kube_gets']:,} |"
        )
    return [*lines, ""]


def _go_side(meta: dict[str, Any]) -> str:
    side = meta.get("go_side", "Go provider (request-pattern model)")
    if "model" in side:
        return (
            "The Go provider is a **request-pattern model** (`fleet/gopattern.py`, `--go-model`), "
            "not the binary."
        )
    return (
        "The Go side is the **real Go provider 3.1.1**: K `provider-aws-go` processes "
        "(`fleet/goprocs.py`), its `--qps` multiplied by the compression; its SDK's retry back-off has "
        "no setting and runs uncompressed."
    )


def markdown(result: dict[str, Any]) -> str:
    meta = result["meta"]
    lines = [
        f"Simulated {meta['date']} on {meta['machine']} (1-minute load average "
        f"{meta['load_average_1m']:g} at the start; other work on the machine shows in every latency), "
        f"commit {meta['commit'][:12]}; "
        f"{meta['rtt_ms']:g} ms round trip added to every AWS and Kubernetes request; "
        f"run took {meta['duration_s']:.0f} s.",
        "",
        "Scaling: K `provider-aws serve` processes stand for K of N nodes, each with the scenario's pods per "
        "node; every account-wide quota below is a token bucket of K/N of it, holding one second of that. "
        "Time is "
        "compressed by the factor shown: arrivals, polls, kubelet's retry back-off and the providers' "
        "windows, "
        "TTLs and back-offs run that much faster, and quotas and the Go client's 5 QPS Kubernetes limit "
        "admit that much more per second; round trips and the AWS SDKs' own retry waits are not "
        "compressed. Counts marked (fleet) are the simulated nodes' counts times N/K; latencies and peak "
        "use are as measured. " + _go_side(meta),
        "",
        "| Quota (per account and region) | Requests/s | Source |",
        "|---|---:|---|",
    ]
    lines += [f"| {q.operation} | {q.per_second:,.0f} | {q.source} |" for q in QUOTAS]
    lines.append("")
    for entry in result["scenarios"]:
        lines += _scenario_lines(entry)
    lines += ["| Scenario | Target | Measured | Met |", "|---|---|---:|---|"]
    for row in result["targets"]:
        met = "met" if row["met"] else "NOT met"
        lines.append(f"| {row['scenario']} | {row['target']} | {row['measured']} | {met} |")
    return "\n".join(lines) + "\n"


def write_results(result: dict[str, Any], directory: Path) -> tuple[Path, Path]:
    return bench_report.write_results(result, directory, stem="fleet", render=markdown)


def with_fleet_section(readme: str, table: str) -> str:
    return with_section(readme, README_BEGIN, README_END, table)
