"""The Containerfile: hadolint-clean, multi-stage, a slim final stage, `provider-aws serve` as its
entrypoint. Building and running it is `make image-test` (tests/image/check_image.py)."""

from __future__ import annotations

import json
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONTAINERFILE = ROOT / "Containerfile"
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass(frozen=True)
class Instruction:
    line: int
    keyword: str
    arguments: str


def _instructions(text: str) -> list[Instruction]:
    """The instructions, continuation lines joined, comments and blank lines dropped."""
    found: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if pending and line.startswith("#"):
            continue
        if not pending:
            start = number
        pending.append(line.removesuffix("\\").strip())
        if not line.endswith("\\"):
            keyword, _, arguments = " ".join(pending).partition(" ")
            found.append(Instruction(start, keyword.upper(), arguments.strip()))
            pending = []
    return found


def _stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    stages: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            stages.append([])
        if stages:
            stages[-1].append(instruction)
    return stages


@pytest.fixture(scope="module")
def instructions() -> list[Instruction]:
    return _instructions(CONTAINERFILE.read_text())


def test_hadolint_finds_nothing() -> None:
    """Every level fails, info included; a rule is ignored only with its reason in a comment."""
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "--failure-threshold", "info", str(CONTAINERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    lines = CONTAINERFILE.read_text().splitlines()
    for number, line in enumerate(lines):
        if "hadolint ignore=" in line:
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and "hadolint" not in reason, f"line {number + 1}: say why"


def test_hadolint_is_real() -> None:
    done = subprocess.run(
        [str(HADOLINT), "--no-color", "-"],
        input="FROM debian\nRUN apt-get install curl\n",
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "DL3008" in done.stdout  # unpinned apt package


def test_base_is_a_build_argument_with_a_public_slim_default(instructions: list[Instruction]) -> None:
    first = instructions[0]
    assert first.keyword == "ARG"
    name, _, default = first.arguments.partition("=")
    assert name == "BASE"
    # Pinned by the digest of its multi-platform index; the comment above says how to move the pin.
    assert re.fullmatch(r"docker\.io/library/python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", default)
    assert (
        "skopeo inspect --raw docker://docker.io/library/python:3.11-slim-bookworm"
        in CONTAINERFILE.read_text()
    )
    froms = [i.arguments.split() for i in instructions if i.keyword == "FROM"]
    assert [words[0] for words in froms] == ["${BASE}", "${BASE}"]
    assert froms[0][1:] == ["AS", "builder"]


def test_builder_builds_the_wheel_and_installs_it(instructions: list[Instruction]) -> None:
    builder, _ = _stages(instructions)
    script = " ".join(i.arguments for i in builder if i.keyword == "RUN")
    # Dependencies only from the hashed lock; the wheel built with the lock's setuptools and
    # installed without resolving anything further.
    assert "pip install --no-cache-dir --require-hashes -r image-requirements.txt" in script
    assert "pip wheel --no-cache-dir --no-deps --no-build-isolation" in script
    assert "pip install --no-cache-dir --no-deps --no-index /wheels/" in script
    assert "pip check" in script
    assert "pip uninstall --yes pip setuptools" in script
    # botocore's reduced models, prepared against the botocore just installed (aws/servicemodels.py)
    assert script.endswith("/opt/provider-aws/bin/python -m provider_aws.aws.servicemodels")


def test_final_stage_holds_only_the_installed_package(instructions: list[Instruction]) -> None:
    _, final = _stages(instructions)
    keywords = [i.keyword for i in final]
    assert "RUN" not in keywords, "the final stage installs nothing: no compilers, no caches"
    assert "HEALTHCHECK" not in [i.keyword for i in instructions], "Kubernetes probes check health"
    copies = [shlex.split(i.arguments) for i in final if i.keyword in ("COPY", "ADD")]
    assert copies == [["--from=builder", "/opt/provider-aws", "/opt/provider-aws"]]
    env = " ".join(i.arguments for i in final if i.keyword == "ENV")
    assert "PATH=/opt/provider-aws/bin:" in env


def test_entrypoint_is_the_console_script(instructions: list[Instruction]) -> None:
    (entrypoint,) = [i for i in instructions if i.keyword == "ENTRYPOINT"]
    assert json.loads(entrypoint.arguments) == ["provider-aws", "serve"]
    assert instructions[-1] is entrypoint
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert "provider-aws" in scripts


def test_build_context_is_an_allow_list() -> None:
    ignore = (ROOT / ".containerignore").read_text()
    assert (ROOT / ".dockerignore").read_text() == ignore
    rules = [line for line in ignore.splitlines() if line and not line.startswith("#")]
    assert rules[0] == "*"
    assert {"!pyproject.toml", "!provider_aws/", "!image-requirements.txt", "!LICENSE"} <= set(rules)


def test_make_image_defaults_to_the_containerfiles_pinned_base(instructions: list[Instruction]) -> None:
    default = instructions[0].arguments.partition("=")[2]
    shown = subprocess.run(
        ["make", "--no-print-directory", "-n", "image"], cwd=ROOT, capture_output=True, text=True,
        timeout=60, check=True,
    ).stdout  # fmt: skip
    assert "scripts/image-build.sh 'localhost/secrets-store-csi-provider-aws:" in shown
    assert f"'{default}'" in shown
