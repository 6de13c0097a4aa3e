"""The Secrets Store CSI driver's own provider client (tests/driverclient, a Go program) as a test helper.

`build/bin/driverclient` imports the driver's `pkg/secrets-store`: `NewPluginClientBuilder` (the driver's
dial options and service config), `MountContent` (Mount, the driver's checks of the answer, then the
driver's `fileutil.WritePayloads` into the target directory) and `Version`. `make test` builds it;
`driverclient_binary()` runs `make driverclient` (a no-op when it is up to date) so that a single test file
can also be run on its own.

`written_tree(target)` reads back what a driver-style atomic writer left in a target directory, so the tree
the driver's code writes can be compared with the one `provider_aws.cli.drivermount.write_atomically` writes.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf.message import Message

from provider_aws.ops.health import check_socket
from testkit.grpc_clients import short_socket_dir
from testkit.makebin import made
from testkit.motoproc import stop
from testkit.serveproc import READY_TIMEOUT, serve_env

__all__ = [
    "DRIVER_RECV_LIMIT",
    "DriverResult",
    "Entry",
    "SharedProvider",
    "driver_mount",
    "driver_version",
    "driverclient_binary",
    "request_json",
    "shared_serve",
    "written_tree",
]

CALL_TIMEOUT = 60.0
# The default of the driver's --max-call-recv-msg-size flag: gRPC's 4 MiB.
DRIVER_RECV_LIMIT = 4 * 1024 * 1024


def driverclient_binary() -> Path:
    """build/bin/driverclient, built (or found up to date) by `make driverclient`."""
    return made("driverclient", "driverclient")


@dataclass(frozen=True)
class DriverResult:
    """What the driver's MountContent or Version returned, as the program printed it."""

    status_code: str  # the gRPC status name as grpc-go spells it: "OK", "NotFound", "ResourceExhausted"
    message: str
    error_code: str = ""  # MountContent's error reason, e.g. "GRPCProviderError"
    object_versions: Mapping[str, str] | None = None
    runtime_version: str = ""
    stderr: str = ""  # the driver's klog lines


def request_json(request: Message, target: Path, current: Mapping[str, str] | None = None) -> str:
    """The program's stdin: the MountRequest's fields, with `target` as the target path.

    `current` replaces the request's current_object_version (the driver's map from the last Mount).
    """
    pairs = (
        [(item.id, item.version) for item in request.current_object_version]
        if current is None
        else list(current.items())
    )
    return json.dumps(
        {
            "attributes": request.attributes,
            "secrets": request.secrets,
            "target_path": str(target),
            "permission": request.permission,
            "current_object_version": [{"id": key, "version": value} for key, value in pairs],
        }
    )


async def _run(binary: Path, args: Iterable[str], stdin: str | None) -> tuple[dict[str, Any], str]:
    process = await asyncio.create_subprocess_exec(
        str(binary),
        *args,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        async with asyncio.timeout(CALL_TIMEOUT + 10):
            out, err = await process.communicate(None if stdin is None else stdin.encode())
    except TimeoutError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        raise AssertionError(f"driverclient exited with {process.returncode}: {err.decode()[-4000:]}")
    return json.loads(out), err.decode(errors="replace")


async def driver_mount(
    binary: Path,
    socket_dir: Path,
    request: Message,
    target: Path,
    *,
    current: Mapping[str, str] | None = None,
    recv_limit: int = DRIVER_RECV_LIMIT,
) -> DriverResult:
    """Mount through the driver's MountContent; the files (if any) land in `target`."""
    args = [
        "-socket-dir",
        str(socket_dir),
        "-timeout",
        f"{CALL_TIMEOUT:.0f}s",
        "-max-call-recv-msg-size",
        str(recv_limit),
        "mount",
    ]
    answer, stderr = await _run(binary, args, request_json(request, target, current))
    return DriverResult(
        status_code=answer["status"]["code"],
        message=answer["status"]["message"],
        error_code=answer["error_code"],
        object_versions=answer["object_versions"],
        stderr=stderr,
    )


async def driver_version(binary: Path, socket_dir: Path) -> DriverResult:
    """Version through the driver's own `Version` helper."""
    args = ["-socket-dir", str(socket_dir), "-timeout", f"{CALL_TIMEOUT:.0f}s", "version"]
    answer, stderr = await _run(binary, args, None)
    return DriverResult(
        status_code=answer["status"]["code"],
        message=answer["status"]["message"],
        runtime_version=answer["runtime_version"],
        stderr=stderr,
    )


@dataclass(frozen=True)
class Entry:
    """One entry of the payload directory: a file with its bytes, or a directory; permission bits."""

    kind: str  # "file" or "dir"
    mode: int
    contents: bytes | None = None


def written_tree(target: Path) -> dict[str, Entry]:
    """The payload an atomic writer left in `target`, keyed by path relative to the mount.

    Checks the writer's shape on the way: `..data` is a symlink to a `..<timestamp>` directory, every
    visible top-level name is a symlink `..data/<name>`, and nothing else is visible.
    """
    data = target / "..data"
    assert data.is_symlink(), f"{data} is not a symlink"
    payload_dir = target / os.readlink(data)
    assert payload_dir.name.startswith(".."), payload_dir
    tree: dict[str, Entry] = {}
    for directory, dirs, files in os.walk(payload_dir):
        for name in dirs + files:
            path = Path(directory, name)
            info = path.lstat()
            relative = path.relative_to(payload_dir).as_posix()
            if stat.S_ISDIR(info.st_mode):
                tree[relative] = Entry("dir", stat.S_IMODE(info.st_mode))
            else:
                assert stat.S_ISREG(info.st_mode), f"{relative} is neither a file nor a directory"
                tree[relative] = Entry("file", stat.S_IMODE(info.st_mode), path.read_bytes())
    visible = {entry.name for entry in target.iterdir() if not entry.name.startswith("..")}
    top = {relative.split("/", 1)[0] for relative in tree}
    assert visible == top, (visible, top)
    for name in visible:
        assert os.readlink(target / name) == f"..data/{name}", name
    return tree


@dataclass
class SharedProvider:
    """A `provider-aws serve` shared by many tests (a module-scoped fixture): its socket directory and log."""

    socket_dir: Path
    log: Path
    read: int = 0

    def new_log(self) -> bytes:
        """The log written since the last call, for the calling test's leak scan."""
        with self.log.open("rb") as stream:
            stream.seek(self.read)
            text = stream.read()
        self.read += len(text)
        return text


@contextmanager
def shared_serve(
    aws_endpoint: str, flags: Sequence[str], extra_env: Mapping[str, str] | None = None
) -> Iterator[SharedProvider]:
    """`provider-aws serve FLAGS...` against `aws_endpoint` (with `extra_env`, e.g. KUBECONFIG), ready on
    entry, stopped (SIGTERM, then SIGKILL) and checked for a clean exit on the way out. Synchronous, so a
    module- or session-scoped fixture can hold it."""
    env = serve_env() | {"AWS_ENDPOINT_URL": aws_endpoint, **(extra_env or {})}
    with short_socket_dir() as socket_dir, tempfile.TemporaryDirectory(prefix="pa-shared-") as work:
        log = Path(work) / "serve.log"
        with log.open("ab") as stream:
            child = subprocess.Popen(
                [sys.executable, "-m", "provider_aws", "serve", "--socket-dir", str(socket_dir), *flags],
                env=env,
                stdout=stream,
                stderr=subprocess.STDOUT,
            )
        try:
            deadline = time.monotonic() + READY_TIMEOUT
            while not asyncio.run(check_socket(socket_dir / "aws.sock", 2.0)).serving:
                assert child.poll() is None, log.read_text()[-4000:]
                assert time.monotonic() < deadline, f"serve not ready in {READY_TIMEOUT} s"
                time.sleep(0.05)
            yield SharedProvider(socket_dir, log)
        finally:
            stop(child)
        assert child.returncode == 0, log.read_text()[-4000:]
