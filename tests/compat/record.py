"""What a `make compat` run saw, case by case, and its results file (tests/compat/results/compat.json)."""

from __future__ import annotations

import json
import os
import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.compat.known import KNOWN
from tests.compat.rig import StepOutcome

__all__ = ["RESULTS", "CaseRecord", "Record"]

RESULTS = Path(__file__).resolve().parent / "results" / "compat.json"


@dataclass(frozen=True)
class CaseRecord:
    id: str
    group: str
    tags: frozenset[str]
    steps: tuple[StepOutcome, ...]

    @property
    def lines(self) -> list[str]:
        return [f"{step.step}: {line}" for step in self.steps for line in step.differences]

    @property
    def differs(self) -> bool:
        return bool(self.lines)

    def explained_by(self) -> dict[str, list[str]]:
        """Difference line -> the keys of the known rows that explain it (empty list: none does)."""
        return {
            line: [known.key for known in KNOWN if known.explains(self.id, self.tags, line)]
            for line in self.lines
        }

    def unexplained(self) -> list[str]:
        return [line for line, keys in self.explained_by().items() if not keys]

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "group": self.group,
            "differences": self.explained_by(),
            "steps": [
                {"step": step.step, "ours": step.ours.summary(), "go": step.go.summary()}
                for step in self.steps
            ],
        }


@dataclass
class Record:
    cases: list[CaseRecord] = field(default_factory=list)

    def add(self, case_id: str, group: str, tags: frozenset[str], steps: Sequence[StepOutcome]) -> CaseRecord:
        entry = CaseRecord(case_id, group, tags, tuple(steps))
        self.cases.append(entry)
        return entry

    def summary(self) -> dict[str, Any]:
        groups: dict[str, dict[str, int]] = {}
        for case in self.cases:
            counts = groups.setdefault(case.group, {"cases": 0, "differ": 0, "mounts": 0})
            counts["cases"] += 1
            counts["differ"] += case.differs
            counts["mounts"] += len(case.steps)
        rows: dict[str, list[str]] = {known.key: [] for known in KNOWN}
        for case in self.cases:
            for keys in case.explained_by().values():
                for key in keys:
                    if case.id not in rows[key]:
                        rows[key].append(case.id)
        requests = {
            side: {
                "aws": sum(getattr(step, side).aws_requests for case in self.cases for step in case.steps),
                "kubernetes": sum(
                    getattr(step, side).kube_requests for case in self.cases for step in case.steps
                ),
            }
            for side in ("ours", "go")
        }
        return {
            "cases": len(self.cases),
            "differ": sum(case.differs for case in self.cases),
            "mounts": sum(len(case.steps) for case in self.cases),
            "groups": groups,
            "rows": rows,
            "requests": requests,
        }

    def write(self, path: Path = RESULTS) -> Path:
        result = {
            "meta": {
                "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
                "machine": f"{len(os.sched_getaffinity(0))} cores, Linux {platform.release()}",
                "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            },
            "summary": self.summary(),
            "cases": [case.as_dict() for case in self.cases],
        }
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=1) + "\n")
        return path
