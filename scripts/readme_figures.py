"""`make readme-figures`: the README's generated sections, from the recorded results only.

`make bench`, `make bench-e2e`, `make fleet` and `make compat` write their results under bench/results/,
fleet/results/ and tests/compat/results/ and never touch the README; this rewrites the README's benchmark,
driver-flow, fleet and compat sections from those files (each one that exists), so a README change is always
a deliberate step.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.driverflow import BEGIN as DRIVERFLOW_BEGIN  # noqa: E402
from bench.driverflow import END as DRIVERFLOW_END  # noqa: E402
from bench.report import with_bench_section, with_section  # noqa: E402
from fleet.report import with_fleet_section  # noqa: E402
from tests.compat.report import BEGIN as COMPAT_BEGIN  # noqa: E402
from tests.compat.report import END as COMPAT_END  # noqa: E402
from tests.compat.report import markdown as compat_markdown  # noqa: E402

BENCH = ROOT / "bench" / "results" / "bench.md"
FLEET = ROOT / "fleet" / "results" / "fleet.md"
DRIVERFLOW = ROOT / "bench" / "results" / "driverflow.md"
COMPAT = ROOT / "tests" / "compat" / "results" / "compat.json"
README = ROOT / "README.md"


def main() -> int:
    readme = README.read_text(encoding="utf-8")
    written = []
    # bench.md and fleet.md are the runs' own renderings (their JSON is written with sorted keys).
    if BENCH.exists():
        readme = with_bench_section(readme, BENCH.read_text(encoding="utf-8"))
        written.append(BENCH)
    if FLEET.exists():
        readme = with_fleet_section(readme, FLEET.read_text(encoding="utf-8"))
        written.append(FLEET)
    if DRIVERFLOW.exists():
        table = DRIVERFLOW.read_text(encoding="utf-8")
        readme = with_section(readme, DRIVERFLOW_BEGIN, DRIVERFLOW_END, table)
        written.append(DRIVERFLOW)
    if COMPAT.exists():
        readme = with_section(
            readme, COMPAT_BEGIN, COMPAT_END, compat_markdown(json.loads(COMPAT.read_text()))
        )
        written.append(COMPAT)
    README.write_text(readme, encoding="utf-8")
    sys.stdout.write(
        "README.md rewritten from " + ", ".join(str(p.relative_to(ROOT)) for p in written) + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
