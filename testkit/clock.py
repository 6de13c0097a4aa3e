"""The tests' one fake clock: a monotonic-seconds callable whose time moves only when a test says."""

from __future__ import annotations

__all__ = ["FakeClock"]


class FakeClock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now
