"""The release plumbing, run locally: `make release-dry-run` (scripts/release.py) makes the chart
archive, the Helm repository index and the image's build arguments from pyproject.toml's version,
and pushes nothing; the release workflow runs that same target and is clean under actionlint."""

from __future__ import annotations

import hashlib
import io
import re
import subprocess
import tarfile
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_chart import BUILD_TIMEOUT, CHART, helm, run_helm  # noqa: F401  (helm is a fixture)

ROOT = Path(__file__).resolve().parent.parent
WORKFLOW = ROOT / ".github" / "workflows" / "release.yml"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
REGISTRY = "ghcr.io/Example-Org"  # as a GitHub owner may spell it; images must be lower case
IMAGE = "ghcr.io/example-org/secrets-store-csi-provider-aws"
CHART_URL = "https://example-org.github.io/secrets-store-csi-provider-aws"
ARCHIVE = f"{CHART.name}-{VERSION}.tgz"


def dry_run(
    helm_path: Path, out: Path, *, tag: str = f"v{VERSION}", extra: str = ""
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), "release-dry-run", f"HELM={helm_path}",
         f"RELEASE_OUT={out}", f"RELEASE_TAG={tag}", f"RELEASE_REGISTRY={REGISTRY}",
         f"RELEASE_CHART_URL={CHART_URL}", f"RELEASE_ARGS={extra}"],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )  # fmt: skip


def image_env(out: Path) -> dict[str, str]:
    lines = (out / "image.env").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def archived(archive: Path, name: str) -> Any:
    with tarfile.open(archive) as tar:
        member = tar.extractfile(f"{CHART.name}/{name}")
        assert member is not None
        return yaml.safe_load(io.TextIOWrapper(member, encoding="utf-8"))


@pytest.fixture(scope="module")
def released(helm: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("release")
    github_output = out.parent / "github-output"
    done = dry_run(helm, out, extra=f"--github-output {github_output}")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"release {VERSION}: nothing pushed" in done.stdout
    return out


def test_the_chart_carries_the_package_version_and_the_released_image(helm: Path, released: Path) -> None:  # noqa: F811
    archive = released / ARCHIVE
    chart = archived(archive, "Chart.yaml")
    assert (chart["version"], chart["appVersion"]) == (VERSION, VERSION)
    assert archived(archive, "values.yaml")["image"]["repository"] == IMAGE
    rendered = run_helm(helm, "template", "aws-provider", str(archive), "--namespace", "kube-system")
    assert f"image: {IMAGE}:{VERSION}" in rendered or f'image: "{IMAGE}:{VERSION}"' in rendered


def test_the_index_lists_the_archive_at_the_repository_url(released: Path) -> None:
    index = yaml.safe_load((released / "index.yaml").read_text())
    (entry,) = index["entries"][CHART.name]
    assert entry["version"] == VERSION
    assert entry["urls"] == [f"{CHART_URL}/{ARCHIVE}"]
    assert entry["digest"] == hashlib.sha256((released / ARCHIVE).read_bytes()).hexdigest()


def test_build_arguments_are_the_containerfiles_own(released: Path) -> None:
    env = image_env(released)
    assert env["TAGS"] == f"{IMAGE}:{VERSION}"
    assert env["PLATFORMS"] == "linux/amd64,linux/arm64"
    build_args = {
        key.removeprefix("BUILD_ARG_"): value for key, value in env.items() if key.startswith("BUILD_ARG_")
    }
    containerfile = (ROOT / "Containerfile").read_text()
    declared = set(re.findall(r"^ARG (\w+)", containerfile, re.MULTILINE))
    assert set(build_args) <= declared
    assert f"ARG BASE={build_args['BASE']}\n" in containerfile
    assert build_args["VERSION"] == VERSION
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert build_args["REVISION"] == head.stdout.strip()


def test_github_outputs_carry_the_same_values(released: Path) -> None:
    text = (released.parent / "github-output").read_text()
    assert f"tags={IMAGE}:{VERSION}\n" in text
    assert "platforms=linux/amd64,linux/arm64\n" in text
    assert f"registry={IMAGE.rsplit('/', 1)[0]}\n" in text
    # build-args spans lines: a here-document whose body is NAME=VALUE lines
    heredoc = re.search(r"^build-args<<(\S+)\n(.*?)\n\1$", text, re.MULTILINE | re.DOTALL)
    assert heredoc is not None
    assert f"VERSION={VERSION}" in heredoc[2].splitlines()


def test_a_tag_other_than_the_version_releases_nothing(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    done = dry_run(helm, tmp_path, tag="v9.9.9")
    assert done.returncode != 0
    assert f"tag 'v9.9.9' does not match pyproject.toml's version '{VERSION}'" in done.stderr
    assert list(tmp_path.glob("*.tgz")) == []


def test_a_release_keeps_the_earlier_ones_in_the_index(helm: Path, tmp_path: Path) -> None:  # noqa: F811
    earlier = tmp_path / "published"
    earlier.mkdir()
    run_helm(helm, "package", str(CHART), "--version", "0.0.1", "--destination", str(earlier))
    run_helm(helm, "repo", "index", str(earlier), "--url", CHART_URL)
    out = tmp_path / "out"
    done = dry_run(helm, out, extra=f"--merge-index {earlier / 'index.yaml'}")
    assert done.returncode == 0, done.stderr
    index = yaml.safe_load((out / "index.yaml").read_text())
    assert sorted(entry["version"] for entry in index["entries"][CHART.name]) == sorted(["0.0.1", VERSION])


# ---- the workflow --------------------------------------------------------------------------------


def built_tool(name: str) -> Path:
    """build/bin/NAME, made by `make NAME` (a no-op once its pinned version is built)."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-C", str(ROOT), name],
        capture_output=True, text=True, timeout=BUILD_TIMEOUT, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    return ROOT / "build" / "bin" / name


@pytest.fixture(scope="module")
def actionlint() -> Path:
    return built_tool("actionlint")


def test_actionlint_finds_nothing_in_the_workflows(actionlint: Path) -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    assert WORKFLOW in workflows
    done = subprocess.run(
        [str(actionlint), "-no-color", *map(str, workflows)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_actionlint_is_real(actionlint: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yml"
    broken.write_text(
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-24.04\n    steps:\n      - run: echo ${{ nope }}\n"
    )
    done = subprocess.run(
        [str(actionlint), "-no-color", str(broken)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 1 and "undefined variable" in done.stdout


def test_the_workflow_releases_tags_through_the_dry_run_target() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow[True]["push"] == {"tags": ["v*"]}  # YAML 1.1 reads the key `on` as true
    (job,) = workflow["jobs"].values()
    steps = job["steps"]
    plan = next(step for step in steps if step.get("id") == "plan")
    assert 'make release-dry-run RELEASE_TAG="$TAG"' in plan["run"]
    assert job["env"]["TAG"] == "${{ github.ref_name }}"
    build = next(step for step in steps if str(step.get("uses", "")).startswith("docker/build-push-action"))
    assert build["with"]["platforms"] == "${{ steps.plan.outputs.platforms }}"
    assert build["with"]["build-args"] == "${{ steps.plan.outputs.build-args }}"
    assert build["with"]["push"] is True
    names = [step.get("name", step.get("uses")) for step in steps]
    # images before the chart that names them, the OCI chart before the index
    assert names.index("Images for amd64 and arm64") < names.index("Chart to ghcr.io (OCI)")
    assert names.index("Chart to ghcr.io (OCI)") < names.index("Chart to the Helm repository (gh-pages)")
