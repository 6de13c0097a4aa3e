"""Binaries the Makefile builds into build/bin (never committed), brought up to date from a test helper.

`make TARGET` is a no-op when its binary is up to date, so a single test file can also be run on its own.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

__all__ = ["BIN", "made"]

ROOT = Path(__file__).resolve().parents[1]
BIN = ROOT / "build" / "bin"
# A first build compiles hundreds of Go packages (the driver imports client-go): minutes on a busy machine.
BUILD_TIMEOUT = 900.0


def made(target: str, binary: str) -> Path:
    """build/bin/BINARY, built (or found up to date) by `make TARGET`."""
    subprocess.run(
        ["make", "--no-print-directory", "-s", target],
        cwd=ROOT,
        check=True,
        timeout=BUILD_TIMEOUT,
        stdout=subprocess.DEVNULL,
    )
    path = BIN / binary
    assert path.is_file(), path
    return path
