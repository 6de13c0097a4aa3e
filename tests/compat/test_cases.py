"""The named cases (tests/compat/cases.py) on both providers; a difference no known row explains fails."""

from __future__ import annotations

import pytest

from tests.compat.cases import CASES, Case
from tests.compat.record import Record
from tests.compat.rig import Rig


@pytest.mark.asyncio
@pytest.mark.timeout(300)
@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
async def test_case(rig: Rig, record: Record, case: Case) -> None:
    rig.reset()
    steps = await case.run(rig, f"case-{len(record.cases):03d}")
    entry = record.add(case.id, case.group, case.tags, steps)
    assert not entry.unexplained(), (entry.unexplained(), [s.ours.message or s.go.message for s in steps])
