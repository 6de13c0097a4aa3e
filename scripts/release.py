"""What a version tag becomes, computed from the one version in pyproject.toml; pushes nothing.

    python3 scripts/release.py --registry ghcr.io/OWNER --chart-url https://OWNER.github.io/REPO \\
        [--tag vX.Y.Z] [--helm build/bin/helm] [--out build/release] [--merge-index FILE] \\
        [--source URL] [--github-output FILE]

Writes into --out:
  * the chart archive CHART-VERSION.tgz: version and appVersion are pyproject.toml's version and the
    default image.repository is the registry's (so `helm install` of the released chart pulls the
    released image);
  * the Helm repository index for --chart-url (build/release/index.yaml by default), merged into
    --merge-index if given, so earlier releases stay listed;
  * image.env: the image's name, tag and platforms and the Containerfile's build arguments, one
    NAME=VALUE a line; with --github-output the same go to the step's outputs.

`make release-dry-run` runs it and stops there; the release workflow (.github/workflows/release.yml)
runs the same target on a tag and pushes what it wrote. Standard library only (and helm), so the
workflow needs no virtual environment.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHART_DIR = ROOT / "charts" / "secrets-store-csi-provider-aws"
IMAGE_NAME = "secrets-store-csi-provider-aws"
PLATFORMS = ("linux/amd64", "linux/arm64")
# semver.org's grammar (core, pre-release, build); helm refuses chart versions outside it.
SEMVER = re.compile(
    r"(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?"
)


class ReleaseError(Exception):
    """The inputs do not make a release; the message says what to fix."""


@dataclass(frozen=True)
class Release:
    version: str
    registry: str
    image: str
    build_args: Mapping[str, str]

    @property
    def image_ref(self) -> str:
        return f"{self.image}:{self.version}"

    def outputs(self, chart: Path) -> dict[str, str]:
        return {
            "version": self.version,
            "registry": self.registry,
            "image": self.image,
            "tags": self.image_ref,
            "platforms": ",".join(PLATFORMS),
            "chart": str(chart),
            "build-args": "\n".join(f"{name}={value}" for name, value in self.build_args.items()),
        }


def package_version(root: Path) -> str:
    version = str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])
    if not SEMVER.fullmatch(version):
        raise ReleaseError(f"pyproject.toml's version {version!r} is not semantic (X.Y.Z[-pre][+build])")
    return version


def check_tag(tag: str, version: str) -> None:
    if tag != f"v{version}":
        raise ReleaseError(
            f"tag {tag!r} does not match pyproject.toml's version {version!r}: tag v{version}, or move the "
            "version in pyproject.toml (and the chart's and kustomization's copies) first"
        )


def containerfile_default_base(root: Path) -> str:
    found = re.search(r"^ARG BASE=(\S+)$", (root / "Containerfile").read_text(), re.MULTILINE)
    if found is None:
        raise ReleaseError("the Containerfile has no `ARG BASE=` default")
    return found.group(1)


def git(root: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=30, check=False)
    if done.returncode != 0:
        raise ReleaseError(
            f"git {' '.join(args)}: {done.stderr.strip()} (a release is built from a git checkout)"
        )
    return done.stdout.strip()


def plan(root: Path, registry: str, tag: str | None, source: str | None) -> Release:
    version = package_version(root)
    if tag is not None:
        check_tag(tag, version)
    registry = registry.rstrip("/").lower()  # OCI repository names are lower case
    if not registry or registry.startswith(("http://", "https://")):
        raise ReleaseError(f"--registry {registry!r}: a registry and path such as ghcr.io/OWNER, no scheme")
    build_args = {
        "BASE": containerfile_default_base(root),
        "VERSION": version,
        "REVISION": git(root, "rev-parse", "HEAD"),
        # The commit's time, not the build's: rebuilding a tag labels the image the same way.
        "CREATED": git(root, "log", "-1", "--format=%cI", "HEAD"),
    }
    if source:
        build_args["SOURCE"] = source
    return Release(version, registry, f"{registry}/{IMAGE_NAME}", build_args)


def set_image_repository(values: str, repository: str) -> str:
    """values.yaml with image.repository replaced, comments and layout kept."""
    stamped, count = re.subn(
        r"^(image:\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+repository:[ \t]*)\S+",
        lambda match: match.group(1) + repository,
        values,
        count=1,
        flags=re.MULTILINE,
    )
    if count != 1:
        raise ReleaseError("the chart's values.yaml has no image.repository to set")
    return stamped


def run_helm(helm: Path, *args: str) -> None:
    done = subprocess.run([str(helm), *args], capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        raise ReleaseError(f"helm {args[0]}: {done.stderr.strip() or done.stdout.strip()}")


def package_chart(helm: Path, release: Release, out: Path) -> Path:
    with tempfile.TemporaryDirectory() as scratch:
        chart = Path(scratch) / CHART_DIR.name
        shutil.copytree(CHART_DIR, chart)
        values = chart / "values.yaml"
        values.write_text(set_image_repository(values.read_text(), release.image))
        run_helm(helm, "lint", "--strict", str(chart))
        run_helm(
            helm, "package", str(chart), "--version", release.version,
            "--app-version", release.version, "--destination", str(out),
        )  # fmt: skip
    return out / f"{CHART_DIR.name}-{release.version}.tgz"


def index_charts(helm: Path, out: Path, chart_url: str, merge: Path | None) -> Path:
    args = ["repo", "index", str(out), "--url", chart_url.rstrip("/")]
    if merge is not None:
        args += ["--merge", str(merge)]
    run_helm(helm, *args)
    return out / "index.yaml"


def write_outputs(path: Path, outputs: Mapping[str, str]) -> None:
    """Appends in the GitHub Actions format: NAME=VALUE, or a here-document for several lines."""
    with path.open("a", encoding="utf-8") as stream:
        for name, value in outputs.items():
            if "\n" in value:
                marker = "EOF_" + hashlib.sha256(value.encode()).hexdigest()[:16]
                stream.write(f"{name}<<{marker}\n{value}\n{marker}\n")
            else:
                stream.write(f"{name}={value}\n")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--registry", required=True, help="where images go, e.g. ghcr.io/OWNER")
    parser.add_argument("--chart-url", required=True, help="URL the Helm repository is served from")
    parser.add_argument("--tag", help="the git tag being released; must be v<pyproject version>")
    parser.add_argument("--helm", type=Path, default=ROOT / "build" / "bin" / "helm")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "release")
    parser.add_argument("--merge-index", type=Path, help="the repository's current index.yaml")
    parser.add_argument("--source", help="the repository's URL, for the image's source label")
    parser.add_argument("--github-output", type=Path, help="append the outputs here ($GITHUB_OUTPUT)")
    args = parser.parse_args(argv)
    try:
        release = plan(ROOT, args.registry, args.tag, args.source)
        if args.merge_index is not None and not args.merge_index.is_file():
            raise ReleaseError(f"--merge-index {args.merge_index}: no such file")
        args.out.mkdir(parents=True, exist_ok=True)
        # helm indexes every archive in the directory: only this release's may be there.
        for stale in [
            *args.out.glob(f"{CHART_DIR.name}-*.tgz"),
            args.out / "index.yaml",
            args.out / "image.env",
        ]:
            stale.unlink(missing_ok=True)
        chart = package_chart(args.helm, release, args.out)
        index = index_charts(args.helm, args.out, args.chart_url, args.merge_index)
    except ReleaseError as error:
        print(f"release: {error}", file=sys.stderr)
        return 1
    outputs = release.outputs(chart)
    env = [
        f"{name.upper().replace('-', '_')}={value}" for name, value in outputs.items() if name != "build-args"
    ]
    env += [f"BUILD_ARG_{line}" for line in outputs["build-args"].splitlines()]
    (args.out / "image.env").write_text("\n".join(env) + "\n")
    if args.github_output is not None:
        write_outputs(args.github_output, outputs)
    print(f"release {release.version}: nothing pushed")
    print(f"  chart  {chart} (index {index})")
    print(f"  image  {release.image_ref} for {', '.join(PLATFORMS)}")
    for name, value in release.build_args.items():
        print(f"         --build-arg {name}={value}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
