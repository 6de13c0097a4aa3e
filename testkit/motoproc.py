"""moto's server in a process of its own, on loopback.

The bench needs it so that the simulated AWS does not take the GIL from the proxy and the driver;
the secret-lifetime test needs it so that the only Python objects holding a secret value in the
test process are the provider's.
"""

from __future__ import annotations

import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["STARTUP_TIMEOUT", "STOP_TIMEOUT", "free_port", "moto_process", "stop"]

STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0


@contextmanager
def moto_process() -> Iterator[tuple[str, int]]:
    """(host, port) of a fresh `python -m moto.server`, stopped when the block ends."""
    host, port = "127.0.0.1", free_port()
    moto = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", host, "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        _wait_for_http(moto, f"http://{host}:{port}/moto-api/reset")
        yield host, port
    finally:
        stop(moto)


def stop(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> None:
    """Signal `process` (if still running), then kill it should it outlast the bound."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_for_http(process: subprocess.Popen[bytes], reset_url: str) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"moto's server exited with {process.returncode}")
        try:
            urllib.request.urlopen(urllib.request.Request(reset_url, method="POST"), timeout=2)
            return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError("moto's server did not answer in time") from None
            time.sleep(0.1)
