"""The Secrets Store CSI driver's node plugin as a child process, and a kubelet stand-in that calls it.

The driver (build/bin/secrets-store-csi-driver) runs as root in a private mount namespace (`unshare -m
--propagation private`): the tmpfs it mounts at each target path exists only there. Providers are started
in that namespace too (`DriverProcess.nsenter`), as a provider pod sees the node's kubelet directory on a
real node, and tests read a volume through /proc/PID/root. `Kubelet` calls NodePublishVolume and
NodeUnpublishVolume through build/bin/csinode (the CSI spec's Go client) with the volume context the
kubelet sends for an inline volume.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from testkit.motoproc import free_port, stop

__all__ = [
    "DRIVER_NAME",
    "CsiResult",
    "DriverProcess",
    "Kubelet",
    "PodVolume",
    "VolumeTree",
    "driver_process",
    "read_tree",
]

DRIVER_NAME = "secrets-store.csi.k8s.io"
VOLUME_NAME = "secrets-store-inline"
READY_TIMEOUT = 60.0
CALL_TIMEOUT = 60.0
_POLL = 0.1
_Entry = TypeVar("_Entry")
_SPCPS = "SecretProviderClassPodStatus"


@dataclass(frozen=True)
class CsiResult:
    code: str
    message: str

    @property
    def ok(self) -> bool:
        return self.code == "OK"


@dataclass(frozen=True)
class DriverProcess:
    process: subprocess.Popen[bytes]
    endpoint: Path
    provider_dir: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def nsenter(self) -> list[str]:
        """The command prefix that runs a program in the driver's mount namespace."""
        return ["nsenter", f"--mount=/proc/{self.pid}/ns/mnt", "--"]

    def seen(self, path: Path) -> Path:
        """`path` as the driver's mount namespace sees it (its tmpfs mounts included)."""
        return Path(f"/proc/{self.pid}/root") / path.relative_to("/")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def is_mount_point(self, path: Path) -> bool:
        mounts = Path(f"/proc/{self.pid}/mountinfo").read_text().splitlines()
        return any(line.split()[4] == str(path) for line in mounts)


def _csinode(
    binary: Path, endpoint: Path, command: str, request: Mapping[str, object] | None = None
) -> CsiResult:
    done = subprocess.run(
        [str(binary), "-endpoint", str(endpoint), "-timeout", f"{CALL_TIMEOUT:.0f}s", command],
        input=json.dumps(request or {}).encode(),
        capture_output=True,
        timeout=CALL_TIMEOUT + 10,
        check=False,
    )
    if done.returncode != 0:
        raise AssertionError(f"csinode {command} failed ({done.returncode}): {done.stderr.decode()[-2000:]}")
    answer = json.loads(done.stdout)
    return CsiResult(answer["code"], answer["message"])


@contextmanager
def driver_process(
    binary: Path,
    csinode: Path,
    workdir: Path,
    kubeconfig: Path,
    node: str,
    *,
    rotation_poll: float | None = None,
    extra_flags: Sequence[str] = (),
) -> Iterator[DriverProcess]:
    """The driver's node plugin, ready once its CSI socket answers Probe and its controller has started.

    rotation_poll: seconds of `--rotation-poll-interval`, with `--enable-secret-rotation`; None leaves
    rotation off (the driver's default). Stopped by pid when the block ends.
    """
    endpoint = workdir / "csi.sock"
    provider_dir = workdir / "providers"
    provider_dir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / "driver.log"
    flags = [
        f"--endpoint=unix://{endpoint}",
        f"--nodeid={node}",
        f"--provider-volume={provider_dir}",
        f"--additional-provider-volume-paths={provider_dir}",
        # loopback and a free port: the default :8095 listens on every address, and two drivers would clash
        f"--metrics-addr=127.0.0.1:{free_port()}",
        "-v=2",
    ]
    if rotation_poll is not None:
        flags += ["--enable-secret-rotation=true", f"--rotation-poll-interval={rotation_poll}s"]
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "KUBECONFIG": str(kubeconfig)}
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            ["unshare", "-m", "--propagation", "private", "--", str(binary), *flags, *extra_flags],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    driver = DriverProcess(process, endpoint, provider_dir, log_path)
    try:
        _wait_ready(driver, csinode)
        yield driver
    finally:
        stop(process)


def _wait_ready(driver: DriverProcess, csinode: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT
    while True:
        if driver.process.poll() is not None:
            raise AssertionError(
                f"the driver exited with {driver.process.returncode}:\n{driver.log()[-4000:]}"
            )
        # The controller's watch of SecretProviderClassPodStatus has synced once the manager runs; a
        # publish sooner could find the manager's cache not started.
        started = driver.endpoint.exists() and f"Caches populated for *v1.{_SPCPS}" in driver.log()
        if started and _csinode(csinode, driver.endpoint, "probe").ok:
            return
        if time.monotonic() > deadline:
            raise AssertionError(
                f"the driver was not ready within {READY_TIMEOUT:.0f} s:\n{driver.log()[-4000:]}"
            )
        time.sleep(_POLL)


@dataclass(frozen=True)
class PodVolume:
    """What the kubelet knows of one pod's Secrets Store volume."""

    namespace: str
    pod: str
    uid: str
    service_account: str
    secret_provider_class: str


@dataclass(frozen=True)
class Kubelet:
    """Plays the kubelet: NodePublishVolume / NodeUnpublishVolume on the driver's CSI socket."""

    csinode: Path
    driver: DriverProcess
    pods_dir: Path

    def target_path(self, volume: PodVolume) -> Path:
        return self.pods_dir / volume.uid / "volumes" / "kubernetes.io~csi" / VOLUME_NAME / "mount"

    def publish(self, volume: PodVolume, tokens: Mapping[str, Mapping[str, str]]) -> CsiResult:
        """tokens: audience -> {"token", "expirationTimestamp"}, as the kubelet mints them for the
        CSIDriver's tokenRequests."""
        context = {
            "secretProviderClass": volume.secret_provider_class,
            "csi.storage.k8s.io/pod.name": volume.pod,
            "csi.storage.k8s.io/pod.namespace": volume.namespace,
            "csi.storage.k8s.io/pod.uid": volume.uid,
            "csi.storage.k8s.io/serviceAccount.name": volume.service_account,
            "csi.storage.k8s.io/ephemeral": "true",
            "csi.storage.k8s.io/serviceAccount.tokens": json.dumps(tokens),
        }
        request = {"volume_id": self._volume_id(volume), "target_path": str(self.target_path(volume))}
        return _csinode(self.csinode, self.driver.endpoint, "publish", {**request, "volume_context": context})

    def unpublish(self, volume: PodVolume) -> CsiResult:
        request = {"volume_id": self._volume_id(volume), "target_path": str(self.target_path(volume))}
        return _csinode(self.csinode, self.driver.endpoint, "unpublish", request)

    @staticmethod
    def _volume_id(volume: PodVolume) -> str:
        # The kubelet's handle for an inline volume: "csi-" and a hash of pod UID and volume name.
        return f"csi-{volume.uid}-{VOLUME_NAME}"


@dataclass(frozen=True)
class VolumeTree:
    """A published volume as the pod sees it: path -> (mode, contents) for files, path -> mode for
    directories, link -> target."""

    files: dict[str, tuple[int, bytes]]
    dirs: dict[str, int]
    links: dict[str, str]

    def data(self) -> dict[str, tuple[int, bytes]]:
        """path -> (mode, contents) of the files under the directory `..data` points to: what a container
        reads, whatever the timestamped directory's name."""
        return self._under_data(self.files)

    def data_dirs(self) -> dict[str, int]:
        """path -> mode of the directories under the one `..data` points to (nested object paths)."""
        return self._under_data(self.dirs)

    def _under_data(self, entries: dict[str, _Entry]) -> dict[str, _Entry]:
        prefix = self.links["..data"] + "/"
        return {
            path.removeprefix(prefix): entry for path, entry in entries.items() if path.startswith(prefix)
        }

    def visible(self) -> dict[str, bytes]:
        return {path: contents for path, (_, contents) in self.data().items()}

    def top_links(self) -> dict[str, str]:
        """The links beside ..data (each object's first path segment -> ..data/segment)."""
        return {name: target for name, target in self.links.items() if name != "..data"}


def read_tree(root: Path) -> VolumeTree:
    files: dict[str, tuple[int, bytes]] = {}
    dirs: dict[str, int] = {}
    links: dict[str, str] = {}
    for directory, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames]:
            path = Path(directory) / name
            relative = str(path.relative_to(root))
            if path.is_symlink():
                links[relative] = os.readlink(path)
            elif path.is_dir():
                dirs[relative] = path.stat().st_mode & 0o7777
            else:
                files[relative] = (path.stat().st_mode & 0o7777, path.read_bytes())
    return VolumeTree(files, dirs, links)
