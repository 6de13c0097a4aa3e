"""`--cpu-limit`: run the provider under a real CPU quota, as a container's `limits.cpu` does.

Kubernetes turns a CPU limit into the cgroup v2 `cpu.max` of the container ("quota period" in
microseconds, 50m = "5000 100000"). The bench makes a cgroup of its own beside the others and
starts the provider inside it. Machines without cgroup v2, or where the bench may not create a
cgroup, run without a quota and say why in the results.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PERIOD_US", "Quota", "cpu_quota"]

CGROUP_ROOT = Path("/sys/fs/cgroup")
PERIOD_US = 100_000


@dataclass(frozen=True)
class Quota:
    description: str
    # The cgroup's process list when the quota applies.
    procs: Path | None = None

    def command(self, command: Sequence[str]) -> list[str]:
        """`command`, made to enter the cgroup before it starts (a shell that moves itself, then execs)."""
        if self.procs is None:
            return list(command)
        return ["/bin/sh", "-c", 'echo $$ > "$0" && exec "$@"', str(self.procs), *command]


@contextmanager
def cpu_quota(millicores: int | None, root: Path = CGROUP_ROOT) -> Iterator[Quota]:
    if millicores is None:
        yield Quota("none")
        return
    if not (root / "cgroup.controllers").exists():
        yield Quota(f"{millicores}m requested, not applied: {root} is not a cgroup v2 hierarchy")
        return
    group = root / f"provider-aws-bench-{millicores}m"
    try:
        group.mkdir(exist_ok=True)
        (group / "cpu.max").write_text(f"{millicores * PERIOD_US // 1000} {PERIOD_US}\n")
    except OSError as error:
        yield Quota(f"{millicores}m requested, not applied: cannot set {group}/cpu.max ({error.strerror})")
        return
    try:
        yield Quota(f"{millicores}m (cgroup v2 cpu.max)", group / "cgroup.procs")
    finally:
        with suppress(OSError):
            group.rmdir()  # empty once the provider has exited
