"""Helm against a `Cluster`, and the charts the end-to-end suite installs besides ours.

- `Helm`: the pinned helm (`make helm`, or PROVIDER_HELM) with the cluster's admin kubeconfig and
  its own cache and config directories.
- `go_provider_chart()`: the Go provider's chart (secrets-store-csi-driver-provider-aws 3.1.1) from
  its source archive in shared/oracles/go-provider, with the driver's chart it depends on
  (secrets-store-csi-driver, at the version its Chart.lock pins) taken from the driver's Go module,
  sigs.k8s.io/secrets-store-csi-driver, under charts/, fetched through the Go module proxy.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from testkit.cluster import ROOT, Cluster

__all__ = [
    "CHART",
    "GO_CHART_NAME",
    "Helm",
    "driver_chart",
    "go_provider_chart",
    "go_provider_file",
    "helm_binary",
]

CHART = ROOT / "charts" / "secrets-store-csi-provider-aws"
GO_CHART_NAME = "secrets-store-csi-driver-provider-aws"
DRIVER_MODULE = "sigs.k8s.io/secrets-store-csi-driver"
HELM_TIMEOUT = 180.0
DOWNLOAD_TIMEOUT = 300.0


def helm_binary() -> Path:
    given = os.environ.get("PROVIDER_HELM")
    path = Path(given) if given else ROOT / "build" / "bin" / "helm"
    if not path.is_file():
        raise FileNotFoundError(f"no helm at {path}: run `make helm`")
    return path


@dataclass(frozen=True)
class Helm:
    cluster: Cluster
    home: Path  # HELM_CACHE_HOME, HELM_CONFIG_HOME and HELM_DATA_HOME live under it

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "KUBECONFIG": str(self.cluster.kubeconfig),
            "HELM_CACHE_HOME": str(self.home / "cache"),
            "HELM_CONFIG_HOME": str(self.home / "config"),
            "HELM_DATA_HOME": str(self.home / "data"),
        }
        done = subprocess.run(
            [str(helm_binary()), *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=HELM_TIMEOUT,
            check=False,
        )
        if check and done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} exited {done.returncode}:\n{done.stderr}")
        return done

    def history(self, release: str, namespace: str) -> list[dict[str, Any]]:
        listed = json.loads(self.run("history", release, "-n", namespace, "-o", "json").stdout)
        assert isinstance(listed, list)
        return listed

    def manifest(self, release: str, namespace: str) -> list[dict[str, Any]]:
        text = self.run("get", "manifest", release, "-n", namespace).stdout
        return [doc for doc in yaml.safe_load_all(text) if doc]


def _go_source() -> Path:
    for candidate in (ROOT.parent / "shared", Path("/work/shared")):
        archives = sorted((candidate / "oracles" / "go-provider").glob("*.tar.gz"))
        if archives:
            return archives[-1]
    raise FileNotFoundError(
        "the Go provider's source archive (shared/oracles/go-provider) is not beside this checkout"
    )


def go_provider_file(path: str) -> str:
    """The text of one file of the Go provider's source, e.g. deployment/aws-provider-installer.yaml."""
    with tarfile.open(_go_source()) as archive:
        for member in archive.getmembers():
            if member.isfile() and member.name.split("/", 1)[-1] == path:
                source = archive.extractfile(member)
                assert source is not None
                return source.read().decode()
    raise FileNotFoundError(f"{path} is not in the Go provider's source archive")


def driver_chart(version: str) -> Path:
    """charts/secrets-store-csi-driver of the driver's Go module at `version` (in the module cache)."""
    done = subprocess.run(
        ["go", "mod", "download", "-json", f"{DRIVER_MODULE}@v{version}"],
        capture_output=True,
        text=True,
        timeout=DOWNLOAD_TIMEOUT,
        check=False,
        cwd=ROOT / "tests" / "kubeapiserver",
    )
    if done.returncode != 0:
        raise RuntimeError(f"go mod download {DRIVER_MODULE}@v{version}: {done.stdout}{done.stderr}")
    chart = Path(json.loads(done.stdout)["Dir"]) / "charts" / "secrets-store-csi-driver"
    if not (chart / "Chart.yaml").is_file():
        raise RuntimeError(f"{DRIVER_MODULE}@v{version} has no charts/secrets-store-csi-driver")
    return chart


def go_provider_chart(workdir: Path) -> Path:
    """The Go provider's chart with its driver dependency in charts/, assembled under `workdir`."""
    prefix = f"charts/{GO_CHART_NAME}/"
    chart = workdir / GO_CHART_NAME
    with tarfile.open(_go_source()) as archive:
        for member in archive.getmembers():
            inner = member.name.split("/", 1)[-1]
            if member.isfile() and inner.startswith(prefix):
                target = chart / inner[len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                source = archive.extractfile(member)
                assert source is not None
                target.write_bytes(source.read())
    lock = yaml.safe_load((chart / "Chart.lock").read_text())
    (pinned,) = [d["version"] for d in lock["dependencies"] if d["name"] == "secrets-store-csi-driver"]
    shutil.copytree(driver_chart(pinned), chart / "charts" / "secrets-store-csi-driver")
    return chart
