"""`provider-aws serve` as a child process: started on a socket directory, ready once Version answers.

The child's stderr goes to a file (never a pipe that a busy child could fill); `ServeProcess` signals it,
waits for it with a bound, reads its resident memory from /proc and its log. `serve_process` kills it by
pid on exit if it is still running.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from provider_aws.ops.health import check_socket

__all__ = ["ServeProcess", "launch", "serve_env", "serve_process"]

READY_TIMEOUT = 30.0
KILL_TIMEOUT = 10.0
_POLL = 0.05


def serve_env() -> dict[str, str]:
    """This process's environment for the child, minus anything that could reach a real AWS or Kubernetes.

    AWS_ENDPOINT_URL is kept: the `aws` fixture points it at the counting proxy.
    """
    endpoint = os.environ.get("AWS_ENDPOINT_URL")
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "PROVIDER_")) and k != "KUBECONFIG"
    }
    if endpoint is not None:
        env["AWS_ENDPOINT_URL"] = endpoint
    env.update(
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PROVIDER_HTTP_ADDR="",
    )
    return env


@dataclass(frozen=True)
class ServeProcess:
    process: asyncio.subprocess.Process
    socket_path: Path
    log_path: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def send(self, signum: signal.Signals) -> None:
        os.kill(self.pid, signum)

    async def exit_status(self, within: float) -> int:
        """The exit status; TimeoutError if the child is still running after `within` seconds."""
        async with asyncio.timeout(within):
            return await self.process.wait()

    def rss_kib(self) -> int:
        """VmRSS of the running child, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
        raise AssertionError(f"no VmRSS for pid {self.pid}")

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def http_url(self) -> str:
        """`http://host:port` of the /metrics endpoint, from the JSON log line that names the bound port."""
        for line in self.log().splitlines():
            entry = json.loads(line) if line.startswith("{") else {}
            if entry.get("event") == "http endpoint listening":
                return f"http://{entry['host']}:{entry['port']}"
        raise AssertionError("no http endpoint in the log; was --http-addr given?")

    async def kill(self) -> None:
        """SIGKILL by pid if still running, then reap it (bounded)."""
        if self.process.returncode is None:
            self.send(signal.SIGKILL)
        await self.exit_status(KILL_TIMEOUT)


async def wait_ready(child: ServeProcess, within: float = READY_TIMEOUT) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if child.process.returncode is not None:
            raise AssertionError(f"serve exited with {child.process.returncode}:\n{child.log()[-4000:]}")
        if (await check_socket(child.socket_path, 2.0)).serving:
            return
        await asyncio.sleep(_POLL)
    raise AssertionError(f"serve did not answer Version within {within:.0f} s:\n{child.log()[-4000:]}")


async def launch(
    socket_dir: Path,
    log_path: Path,
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    exact: bool = False,
) -> ServeProcess:
    """`provider-aws serve --socket-dir DIR FLAGS...` started, not yet ready; the caller kills it.

    exact: FLAGS are all of serve's args (as a manifest renders them); they name DIR themselves.
    """
    args = list(flags) if exact else ["--socket-dir", str(socket_dir), *flags]
    command = [sys.executable, "-m", "provider_aws", "serve", *args]
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            env=serve_env() if env is None else dict(env),
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    return ServeProcess(process, socket_dir / "aws.sock", log_path)


@asynccontextmanager
async def serve_process(
    socket_dir: Path,
    log_path: Path,
    flags: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    *,
    exact: bool = False,
) -> AsyncIterator[ServeProcess]:
    """A ready `provider-aws serve --socket-dir DIR FLAGS...`; killed by pid on exit if still running."""
    child = await launch(socket_dir, log_path, flags, env, exact=exact)
    try:
        await wait_ready(child)
        yield child
    finally:
        await child.kill()
