"""The README's section on the real Go provider, rendered from a `make compat` results file.

`make readme-figures` writes it between the compat markers (bench.report.with_section); `make compat`
checks that the README it runs against states the run's counts and has a row for every known difference.
"""

from __future__ import annotations

from typing import Any

from tests.compat.known import KNOWN

__all__ = ["BEGIN", "END", "count_sentence", "markdown"]

BEGIN = "<!-- compat:begin -->"
END = "<!-- compat:end -->"


def count_sentence(summary: dict[str, Any]) -> str:
    return (
        f"{summary['cases']} cases ({summary['mounts']} Mounts on each side) ran; "
        f"{summary['differ']} differ, each by a row of this table."
    )


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def markdown(result: dict[str, Any]) -> str:
    summary, meta = result["summary"], result["meta"]
    lines = [
        f"Run of {meta['date']} ({meta['machine']}): {count_sentence(summary)}",
        "",
        "| Group | Cases | Mounts per side | Differ |",
        "|---|---|---|---|",
    ]
    for group, counts in summary["groups"].items():
        lines.append(f"| {group} | {counts['cases']} | {counts['mounts']} | {counts['differ']} |")
    requests = summary["requests"]
    lines += [
        "",
        f"Requests over the whole run: AWS {requests['ours']['aws']} here, {requests['go']['aws']} by the "
        f"Go provider; Kubernetes API {requests['ours']['kubernetes']} here, "
        f"{requests['go']['kubernetes']} by the Go provider.",
        "",
        "| Difference | Go provider 3.1.1 | This provider | Why | Cases |",
        "|---|---|---|---|---|",
    ]
    for known in KNOWN:
        cases = summary["rows"].get(known.key, [])
        lines.append(
            f"| `{known.key}` | {_cell(known.go)} | {_cell(known.ours)} | {_cell(known.why)} | {len(cases)} |"
        )
    return "\n".join(lines) + "\n"
