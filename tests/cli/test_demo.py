"""`make demo` end to end: `python -m demo` as its own process, as the Makefile runs it."""

from __future__ import annotations

import re
import stat
import subprocess
import sys
from pathlib import Path

from testkit.leakscan import LeakScan

DEMO_TIMEOUT = 120.0


def test_demo_mounts_the_seed_secrets_and_cleans_up(tmp_path: Path, leak_scan: LeakScan) -> None:
    # The demo shows contents on stdout by design; its logs (stderr) must not.
    leak_scan.add_value("demo: MySecret2's value", "the value of MySecret2")
    leak_scan.add_value("demo: MySecret's username", "john.doe")
    target = tmp_path / "mount"
    done = subprocess.run(
        [sys.executable, "-m", "demo", "--target", str(target)],
        capture_output=True,
        text=True,
        timeout=DEMO_TIMEOUT,
        check=False,
    )
    leak_scan.add_text("make demo: stderr", done.stderr)
    assert done.returncode == 0, done.stderr
    rows = {line.split()[0]: line.split() for line in done.stdout.splitlines() if line[:1].isalnum()}
    assert rows["dbusername"][1:2] + rows["dbusername"][-1:] == ["0644", "john.doe"]
    assert rows["dbpassword"][-1] == "123456"
    assert "foobar" in rows
    # the jmesPath files carry the version of their parent secret
    assert rows["dbusername"][2] == rows["dbpassword"][2] != rows["foobar"][2]
    assert (target / "dbusername").read_text() == "john.doe"
    assert (target / "dbpassword").read_text() == "123456"
    assert stat.S_IMODE((target / "foobar").stat().st_mode) == 0o644
    assert (target / "..data").is_symlink()
    socket = re.search(r"listening on (\S+)", done.stdout)
    assert socket is not None and not Path(socket.group(1)).exists()
    assert "stopped the provider and moto" in done.stdout
