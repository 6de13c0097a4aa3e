"""Generated SecretProviderClasses (hypothesis, derandomized, bounded) on both providers: each mounted, then
its values rotated and mounted again with each side's versions. A difference no known row explains fails."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from testkit.awsobjects import Put
from tests.compat.record import Record
from tests.compat.rig import (
    FAILOVER,
    PRIMARY,
    Rig,
    StepOutcome,
    attributes_for,
    objects_yaml,
    versions_of,
)

EXAMPLES = 40
JSON_VALUE = {"a": "one", "b": {"c": "two"}, "n": 3}
# name -> (kind, value); JSON ones take jmesPath entries.
POOL: dict[str, tuple[str, str]] = {
    "gen/alpha": ("secret", json.dumps(JSON_VALUE)),
    "gen/beta": ("secret", "beta value"),
    "gamma": ("binary", "gamma bytes"),
    "dir/delta": ("secret", "delta value"),
    "/gen/p1": ("parameter", "p1 value"),
    "gen-p2": ("parameter", "p2 value"),
    "/gen/json": ("parameter", json.dumps(JSON_VALUE)),
}
MISSING = ("gen/missing", "/gen/missing")
JMES_PATHS = ("a", "b.c", "b", "n", "x", "[[")
ALIASES = ("alias", "alias2", "sub/alias", "..hidden", "a.b", "alias")
MODES = ("0600", "0440", "0644", "0777", "640")


@st.composite
def _object(draw: st.DrawFn) -> dict[str, Any]:
    name = draw(st.sampled_from(sorted(POOL) + list(MISSING)))
    kind = POOL.get(name, ("parameter" if name.startswith("/") else "secret", ""))[0]
    entry: dict[str, Any] = {
        "objectName": name,
        "objectType": "ssmparameter" if kind == "parameter" else "secretsmanager",
    }
    if draw(st.booleans()):
        entry["objectAlias"] = draw(st.sampled_from(ALIASES))
    if draw(st.integers(0, 3)) == 0:
        entry["filePermission"] = draw(st.sampled_from(MODES))
    if name in ("gen/alpha", "/gen/json") and draw(st.booleans()):
        paths = draw(st.lists(st.sampled_from(JMES_PATHS), min_size=1, max_size=3, unique=True))
        entry["jmesPath"] = [
            {"path": path, "objectAlias": f"j-{i}-{path.replace('[', 'q')}"} for i, path in enumerate(paths)
        ]
    if draw(st.integers(0, 5)) == 0:
        entry["objectVersionLabel"] = "AWSCURRENT"
    return entry


@st.composite
def _spc(draw: st.DrawFn) -> dict[str, Any]:
    entries = draw(st.lists(_object(), min_size=1, max_size=6))
    parameters: dict[str, str] = {"region": PRIMARY, "objects": objects_yaml(entries)}
    translation = draw(st.sampled_from((None, "False", "_", "-", "--")))
    if translation is not None:
        parameters["pathTranslation"] = translation
    if draw(st.integers(0, 3)) == 0:
        parameters["failoverRegion"] = FAILOVER
    permission = draw(st.sampled_from(("420", "256", "384")))
    return {"parameters": parameters, "permission": permission}


def tags_of(spc: dict[str, Any]) -> frozenset[str]:
    """Features of a generated SecretProviderClass that a known difference can be bound to."""
    parameters = spc["parameters"]
    tags = {"generated"}
    if "failoverRegion" in parameters:
        tags.add("failover")
    return frozenset(tags)


async def _run(rig: Rig, case_dir: str, spc: dict[str, Any]) -> list[StepOutcome]:
    regions = (PRIMARY, FAILOVER) if "failoverRegion" in spc["parameters"] else (PRIMARY,)
    rig.store([Put(kind, name, value, region) for region in regions for name, (kind, value) in POOL.items()])
    attributes = attributes_for(rig.new_pod(), spc["parameters"])
    first = await rig.both(case_dir, "mount", attributes, permission=spc["permission"])
    for region in regions:
        sm, ssm = rig.seed_client("secretsmanager", region), rig.seed_client("ssm", region)
        for name, (kind, value) in POOL.items():
            if kind == "parameter":
                ssm.put_parameter(
                    Name=name, Value=value.replace("value", "rotated"), Type="String", Overwrite=True
                )
            elif kind == "binary":
                sm.put_secret_value(SecretId=name, SecretBinary=b"gamma rotated")
            else:
                sm.put_secret_value(SecretId=name, SecretString=value.replace("value", "rotated"))
    second = await rig.both(
        case_dir, "rotation", attributes, permission=spc["permission"], current=versions_of(first)
    )
    return [first, second]


@pytest.mark.timeout(1800)
@settings(
    max_examples=EXAMPLES,
    derandomize=True,
    database=None,
    deadline=None,
    phases=(Phase.generate,),
    suppress_health_check=(HealthCheck.function_scoped_fixture, HealthCheck.too_slow),
)
@given(spc=_spc())
def test_generated_spc(rig: Rig, record: Record, spc: dict[str, Any]) -> None:
    rig.reset()
    number = sum(case.group == "generated SecretProviderClasses" for case in record.cases) + 1
    steps = asyncio.run(_run(rig, f"generated-{number:03d}", spc))
    case_id = f"generated #{number}: {json.dumps(spc, sort_keys=True)}"
    entry = record.add(case_id, "generated SecretProviderClasses", tags_of(spc), steps)
    assert not entry.unexplained(), (entry.unexplained(), [s.ours.message or s.go.message for s in steps])
