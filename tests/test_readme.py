"""The README documents what the code defines: metrics, CLI flags, SecretProviderClass keys.

Every name list comes from the running code (the metrics registry, the argparse parsers, the
parser's own field tuples), so a new metric, flag or field without a README entry fails here,
and so does a README entry for something the code no longer has.
"""

from __future__ import annotations

import argparse
import ast
import asyncio
import inspect
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from bench.report import with_bench_section, with_section
from fleet.report import with_fleet_section
from provider_aws.app import observed_provider
from provider_aws.cli import main as cli
from provider_aws.request import parse
from provider_aws.request.objects import _FAILOVER_FIELDS, _JMES_FIELDS, _OBJECT_FIELDS
from provider_aws.settings import GO_FLAGS, Settings, add_serve_arguments, serve_flags
from tests.compat.report import BEGIN as COMPAT_BEGIN
from tests.compat.report import END as COMPAT_END
from tests.compat.report import markdown as compat_markdown
from tests.test_chart import CHART, at, leaf_paths

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
BENCH_BEGIN, BENCH_END = "<!-- bench:begin -->", "<!-- bench:end -->"


@pytest.fixture(scope="module")
def readme() -> str:
    return README.read_text(encoding="utf-8")


def first_column(text: str, marker: str) -> list[str]:
    """First cells of the first Markdown table after `marker`: code spans unwrapped, first word only."""
    start = text.index(marker)
    rows: list[str] = []
    for line in text[start:].splitlines()[1:]:
        if line.startswith("|"):
            rows.append(line)
        elif rows:
            break
    cells = [row.split("|")[1].strip() for row in rows[2:]]  # past the header and its rule
    return [cell.strip("`").split()[0] if cell else "" for cell in cells]


def table_row(text: str, marker: str, key: str) -> str:
    """The row of the table after `marker` whose first cell is `key` in a code span."""
    section = text[text.index(marker) :]
    for line in section.splitlines():
        if line.startswith(f"| `{key}`"):
            return line
    raise AssertionError(f"no row for {key} after {marker!r}")


def exposed_metrics() -> set[str]:
    """Metric names as a scrape shows them, from the registry `provider-aws serve` builds."""

    async def scrape() -> str:
        async with observed_provider(Settings()) as served:
            return served.metrics.exposition().decode()

    text = asyncio.run(scrape())
    names = {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}
    return {name for name in names if not name.endswith("_created")}


def help_flags(capsys: pytest.CaptureFixture[str], command: str) -> set[str]:
    with pytest.raises(SystemExit) as stopped:
        cli.main([command, "--help"], environ={})
    assert stopped.value.code == 0
    flags = set(re.findall(r"(?<![\w-])--[a-z0-9][a-z0-9-]*", capsys.readouterr().out))
    return flags - {"--help"}


def spc_parameters() -> set[str]:
    """The `spec.parameters` keys `parse._parameters` reads: `text.get(KEY)` and `_region(text, KEY)`.

    parse.py has no public tuple of parameter names, so they are read from its source.
    """
    tree = ast.parse(textwrap.dedent(inspect.getsource(parse._parameters)))
    keys: set[str] = set()
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        reads_text = (
            isinstance(func, ast.Attribute)
            and func.attr == "get"
            and isinstance(func.value, ast.Name)
            and func.value.id == "text"
        )
        args = node.args[:1] if reads_text else node.args[1:2]
        if reads_text or (isinstance(func, ast.Name) and func.id == "_region"):
            keys.update(
                arg.value for arg in args if isinstance(arg, ast.Constant) and isinstance(arg.value, str)
            )
    return keys


def test_the_two_commands_come_before_any_other_section(readme: str) -> None:
    headings = [match.start() for match in re.finditer(r"^## ", readme, re.MULTILINE)]
    assert len(headings) > 5
    first = readme[headings[0] : headings[1]]
    assert first.startswith("## Two commands")
    assert "make demo" in first
    assert "make test" in first
    assert readme.index("make demo") < headings[1]
    assert readme.index("make test") < headings[1]


def test_every_exposed_metric_is_documented_and_no_other(readme: str) -> None:
    exposed = exposed_metrics()
    assert "provider_aws_mounts_total" in exposed
    assert "provider_aws_identity_credential_cache_hits_total" in exposed
    assert "provider_aws_rotation_polls_total" in exposed
    assert set(first_column(readme, "### Metrics")) == exposed
    # A histogram's series (_bucket, _count, _sum) count as the histogram.
    mentioned = {
        re.sub(r"_(bucket|count|sum)$", "", name) for name in re.findall(r"provider_aws_[a-z0-9_]+", readme)
    }
    assert mentioned - exposed == set(), "the README names metrics the provider does not expose"


def test_the_serve_flags_table_is_the_settings_table(readme: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The README's table is generated from Settings (`make architecture`), and --help has the same flags."""
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "architecture.py"), "--settings"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert script.stdout.strip() in readme, "run `make architecture` to regenerate the README's flag table"
    go_flags = {f"--{flag}" for flag in GO_FLAGS}
    flags = help_flags(capsys, "serve") - go_flags
    assert {"--socket-dir", "--http-addr", "--log-format", "--log-level"} <= flags
    assert (
        set(first_column(readme, "## `provider-aws serve`"))
        == flags
        == {f"--{f.name}" for f in serve_flags()}
    )
    parser = argparse.ArgumentParser()
    add_serve_arguments(parser, {})
    defaults = {action.option_strings[0]: action.default for action in parser._actions}
    for flag in serve_flags():
        assert defaults[f"--{flag.name}"] == flag.default == getattr(Settings(), flag.dest)


def test_every_go_provider_flag_is_documented_where_users_move_from_it(
    readme: str, capsys: pytest.CaptureFixture[str]
) -> None:
    go_flags = {f"--{flag}" for flag in GO_FLAGS}
    assert go_flags <= help_flags(capsys, "serve")
    moving = readme[readme.index("## Moving from the Go provider") :]
    assert set(first_column(moving, "The Go provider's flags are accepted")) == go_flags


def test_the_chart_values_table_is_values_yaml(readme: str) -> None:
    """One row per value (maps of scalars opened up), and each scalar's default as values.yaml has it."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    marker = "#### Chart values"
    paths = leaf_paths(values)
    assert set(first_column(readme, marker)) == paths
    for path in paths:
        default = at(values, path)
        if isinstance(default, dict | list):
            continue  # described in words
        cell = table_row(readme, marker, path).split("|")[2].strip()
        assert cell.startswith("`") and cell.endswith("`"), f"{path}: default {cell} is not in a code span"
        assert yaml.safe_load(cell.strip("`")) == default, (
            f"{path}: README says {cell}, values.yaml {default!r}"
        )


def test_every_mount_and_validate_flag_is_documented(readme: str, capsys: pytest.CaptureFixture[str]) -> None:
    mount = help_flags(capsys, "mount")
    assert {"--spc", "--target", "--socket"} <= mount
    assert set(first_column(readme, "### `provider-aws mount`")) == mount
    validate_section = readme[
        readme.index("### `provider-aws validate") : readme.index("### `provider-aws mount`")
    ]
    for flag in help_flags(capsys, "validate"):
        assert f"`{flag}" in validate_section


def test_every_secretproviderclass_parameter_is_documented(readme: str) -> None:
    parameters = spc_parameters()
    assert {"objects", "region", "failoverRegion", "usePodIdentity"} <= parameters
    assert set(first_column(readme, "### Parameters")) == parameters


@pytest.mark.parametrize(
    ("marker", "fields"),
    [
        ("### Object fields", _OBJECT_FIELDS),
        ("`jmesPath` entry fields:", _JMES_FIELDS),
        ("`failoverObject` fields:", _FAILOVER_FIELDS),
    ],
)
def test_every_object_field_is_documented(readme: str, marker: str, fields: tuple[str, ...]) -> None:
    assert fields
    assert set(first_column(readme, marker)) == set(fields)


def test_benchmark_section_has_its_markers_and_a_table(readme: str) -> None:
    begin, end = readme.index(BENCH_BEGIN), readme.index(BENCH_END)
    assert begin < end
    assert readme.count(BENCH_BEGIN) == readme.count(BENCH_END) == 1
    assert "| Target |" in readme[begin:end]


def test_benchmark_section_is_the_recorded_run(readme: str) -> None:
    recorded = (ROOT / "bench" / "results" / "bench.md").read_text()
    assert with_bench_section(readme, recorded) == readme


def test_fleet_and_compat_sections_are_the_recorded_runs(readme: str) -> None:
    """`make readme-figures` rewrites them from fleet/results and tests/compat/results; nothing else does."""
    recorded = (ROOT / "fleet" / "results" / "fleet.md").read_text()
    assert with_fleet_section(readme, recorded) == readme
    compat = json.loads((ROOT / "tests" / "compat" / "results" / "compat.json").read_text())
    assert with_section(readme, COMPAT_BEGIN, COMPAT_END, compat_markdown(compat)) == readme


def test_links_to_the_security_policy_and_names_the_license(readme: str) -> None:
    assert "(SECURITY.md)" in readme
    assert (ROOT / "SECURITY.md").is_file()
    assert "Apache License 2.0" in readme


def test_the_architecture_diagram_is_generated_from_the_current_code(readme: str) -> None:
    script = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "architecture.py")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert script.stdout.strip() in readme, "run `make architecture` to regenerate the README's diagram"
    # Every part of the package shows up in it, in the order a Mount meets them.
    for part in ("rpc/", "mounter.py", "request/", "identity/", "aws/", "answer.py"):
        assert f" {part} " in script.stdout
