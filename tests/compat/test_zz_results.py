"""After every case (this module runs last): the results file, stale rows, and the README's counts."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.compat.cases import CASES
from tests.compat.known import KNOWN
from tests.compat.record import Record
from tests.compat.report import BEGIN, END, count_sentence
from tests.compat.test_generated import EXAMPLES

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
PARTIAL = ROOT / "build" / "compat" / "partial.json"


def test_results_and_readme(record: Record) -> None:
    if len(record.cases) < len(CASES) + EXAMPLES:
        partial = record.write(PARTIAL)
        pytest.skip(f"a partial run ({len(record.cases)} cases): written to {partial}, not to the results")
    path = record.write()
    summary = record.summary()
    stale = [known.key for known in KNOWN if not summary["rows"][known.key]]
    assert not stale, f"known differences no case showed any more (remove their rows): {stale}"
    readme = README.read_text(encoding="utf-8")
    section = readme[readme.index(BEGIN) : readme.index(END)]
    assert count_sentence(summary) in section, f"README out of date with {path}: run `make readme-figures`"
    for known in KNOWN:
        assert f"`{known.key}`" in section, known.key
