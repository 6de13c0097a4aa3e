"""The built image, for real: `make image-test` (not part of `make test`; it needs buildah and podman).

It starts the image the way the DaemonSet runs it (read-only root file system, every capability
dropped, no privilege escalation, the runtime's default seccomp profile, the socket directory
mounted from the host) and calls Version over the socket from outside the container. The container
shares the host's network only so that its HTTP endpoint, bound to 127.0.0.1, can be probed.

PROVIDER_IMAGE names the image (set by the Makefile).
"""

from __future__ import annotations

import email.parser
import json
import os
import re
import resource
import shutil
import socket
import stat
import subprocess
import sys
import tempfile
import time
import tomllib
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
GRPCURL = Path(sys.executable).parent / "grpcurl"
SOCKET_DIR = "/var/run/secrets-store-csi-providers"
VERSION = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
# The semver grammar's core, pre-release and build parts (semver.org).
SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$"
)
START_TIMEOUT = 60.0


def _run(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        pytest.fail(f"{' '.join(args[:3])} ... exited {done.returncode}: {done.stderr.strip()[-2000:]}")
    return done


def _podman(*args: str, timeout: float = 60, check: bool = True) -> subprocess.CompletedProcess[str]:
    # crun refuses hybrid cgroup hierarchies (this kind of machine has one); runc does not.
    return _run("podman", "--runtime", "runc", *args, timeout=timeout, check=check)


@pytest.fixture(scope="module")
def image() -> str:
    name = os.environ.get("PROVIDER_IMAGE", "")
    if not name:
        pytest.fail("set PROVIDER_IMAGE to the image to test (`make image-test` does)")
    if shutil.which("podman") is None:
        pytest.fail("podman is missing: run scripts/image-tools.sh")
    return name


@pytest.fixture(scope="module")
def config(image: str) -> dict[str, Any]:
    (inspected,) = json.loads(_podman("image", "inspect", image).stdout)
    result: dict[str, Any] = inspected["Config"]
    return result


def test_image_config(config: dict[str, Any]) -> None:
    assert config["Entrypoint"] == ["provider-aws", "serve"]
    assert "Healthcheck" not in config
    assert config.get("User") == "0"
    assert "8989/tcp" in config.get("ExposedPorts", {})


@pytest.fixture(scope="module")
def rootfs(image: str) -> Iterator[Path]:
    path = Path(_podman("image", "mount", image).stdout.strip())
    try:
        yield path
    finally:
        _podman("image", "unmount", image, check=False)


def test_image_holds_the_installed_package_and_nothing_of_the_build(rootfs: Path) -> None:
    venv = rootfs / "opt/provider-aws"
    assert (venv / "bin/provider-aws").is_file()
    site = next((venv / "lib").glob("python3.*/site-packages"))
    assert (site / "provider_aws/__init__.py").is_file()
    assert (site / f"secrets_store_csi_provider_aws-{VERSION}.dist-info").is_dir()
    leftovers = [
        *(venv / "bin").glob("pip*"),
        *site.glob("pip"),
        *site.glob("setuptools"),
        *(rootfs / "usr/bin").glob("gcc*"),
        *(rootfs / "usr/bin").glob("cc"),
        *(rootfs / "root/.cache").glob("pip"),
        rootfs / "wheels",
        rootfs / "src",
    ]
    assert [str(p.relative_to(rootfs)) for p in leftovers if p.exists() or p.is_symlink()] == []


def test_image_ships_the_license_and_exactly_the_locked_dependencies(rootfs: Path) -> None:
    site = next((rootfs / "opt/provider-aws/lib").glob("python3.*/site-packages"))
    dist_info = site / f"secrets_store_csi_provider_aws-{VERSION}.dist-info"
    assert (dist_info / "licenses/LICENSE").read_bytes() == (ROOT / "LICENSE").read_bytes()
    installed = {}
    for metadata in site.glob("*.dist-info/METADATA"):
        fields = email.parser.HeaderParser().parsestr(metadata.read_text())
        installed[fields["Name"].lower().replace("_", "-")] = fields["Version"]
    locked = dict(
        re.findall(r"^([a-z0-9][a-z0-9._-]*)==(\S+)", (ROOT / "image-requirements.txt").read_text(), re.M)
    )
    del locked["setuptools"]  # the build's, uninstalled afterwards
    del installed["secrets-store-csi-provider-aws"]
    assert installed == locked


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _limit(kind: int, cap: int) -> str:
    # podman's defaults are higher than this machine grants (no CAP_SYS_RESOURCE): ask for what the
    # test process has, at most `cap` (runc could not raise the process limit past a few thousand).
    soft = min(resource.getrlimit(kind)[0], cap)
    return f"{soft}:{soft}"


@dataclass(frozen=True)
class Provider:
    name: str
    socket: Path
    http: str

    def logs(self) -> str:
        done = _podman("logs", self.name, check=False)
        return (done.stdout + done.stderr)[-4000:]

    def running(self) -> bool:
        done = _podman("inspect", "--format", "{{.State.Running}}", self.name, check=False)
        return done.stdout.strip() == "true"


def _wait_for_socket(provider: Provider) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if not provider.running():
            pytest.fail(f"the provider exited before serving:\n{provider.logs()}")
        if provider.socket.is_socket():
            with socket.socket(socket.AF_UNIX) as client:
                try:
                    client.connect(str(provider.socket))
                except OSError:
                    pass
                else:
                    return
        time.sleep(0.2)
    pytest.fail(f"no socket at {provider.socket} after {START_TIMEOUT:.0f}s:\n{provider.logs()}")


@pytest.fixture
def provider(image: str) -> Iterator[Provider]:
    directory = Path(tempfile.mkdtemp(prefix="pa-image-", dir="/tmp"))
    name = f"provider-aws-image-test-{uuid.uuid4().hex[:8]}"
    http = f"127.0.0.1:{_free_port()}"
    started = Provider(name, directory / "aws.sock", http)
    try:
        _podman(
            "run",
            "--detach",
            "--name",
            name,
            "--read-only",
            "--read-only-tmpfs=false",
            "--tmpfs",
            "/tmp",
            "--cap-drop",
            "ALL",
            "--security-opt",
            "no-new-privileges",
            "--user",
            "0",
            "--network",
            "host",
            "--ulimit",
            f"nofile={_limit(resource.RLIMIT_NOFILE, 65536)}",
            "--ulimit",
            f"nproc={_limit(resource.RLIMIT_NPROC, 4096)}",
            "--volume",
            f"{directory}:{SOCKET_DIR}",
            "--env",
            "NODE_NAME=image-test",
            image,
            f"--http-addr={http}",
        )
        _wait_for_socket(started)
        yield started
    finally:
        # Also when `run` failed: podman may have created the container all the same.
        _podman("rm", "--force", "--ignore", "--time", "5", name, check=False, timeout=60)
        shutil.rmtree(directory, ignore_errors=True)


def _grpcurl(socket_path: Path, *args: str) -> str:
    """grpcurl OPTIONS... SOCKET VERB: the last argument is the method (or `list`)."""
    *options, verb = args
    command = [str(GRPCURL), "-plaintext", "-max-time", "10", "-unix", *options, str(socket_path), verb]
    return _run(*command).stdout


def _get(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as answer:  # loopback only
        status: int = answer.status
        return status


def test_version_over_the_mounted_socket(provider: Provider) -> None:
    mode = provider.socket.stat().st_mode
    assert stat.S_ISSOCK(mode)
    assert stat.S_IMODE(mode) in (0o600, 0o660)

    answer = json.loads(
        _grpcurl(provider.socket, "-d", '{"version": "v1alpha1"}', "v1alpha1.CSIDriverProvider/Version")
    )
    assert answer["version"] == "v1alpha1"
    assert answer["runtimeName"]
    assert answer["runtimeVersion"] == VERSION
    assert SEMVER.match(answer["runtimeVersion"])

    services = _grpcurl(provider.socket, "list").split()
    assert {"v1alpha1.CSIDriverProvider", "grpc.health.v1.Health"} <= set(services)

    assert _get(f"http://{provider.http}/healthz") == 200
    assert _get(f"http://{provider.http}/readyz") == 200


def test_sigterm_stops_cleanly_and_removes_the_socket(provider: Provider) -> None:
    _podman("stop", "--time", "30", provider.name, timeout=60)
    code = _podman("inspect", "--format", "{{.State.ExitCode}}", provider.name).stdout.strip()
    assert code == "0", provider.logs()
    assert not provider.socket.exists()
