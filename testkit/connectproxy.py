"""An HTTPS proxy on loopback that only records where clients were going.

Each CONNECT's `host:port` is kept and then refused (403), so a client configured with
HTTPS_PROXY shows which endpoint it chose (e.g. a FIPS one) without any request leaving the machine.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import dataclass, field

from testkit.loopback import LoopbackHttpServer, QuietHandler

__all__ = ["ConnectRecorder"]


@dataclass
class ConnectLog:
    hosts: Counter[str] = field(default_factory=Counter)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self) -> set[str]:
        with self.lock:
            return set(self.hosts)

    async def wait_for(self, host: str, limit: float) -> None:
        """Poll until `host` has been asked for (the proxy's threads cannot set a loop's event)."""
        async with asyncio.timeout(limit):
            while host not in self.seen():  # noqa: ASYNC110 - polled, see the docstring
                await asyncio.sleep(0.02)


def _handler(log: ConnectLog) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_CONNECT(self) -> None:
            with log.lock:
                log.hosts[self.path] += 1
            self.close_connection = True
            self.send_response(403, "recorded, not forwarded")
            self.send_header("Content-Length", "0")
            self.end_headers()

    return Handler


class ConnectRecorder(LoopbackHttpServer):
    """Start with `start()`, stop with `stop()`; `url` is what HTTPS_PROXY should be."""

    def __init__(self) -> None:
        self.log = ConnectLog()
        super().__init__(_handler(self.log))
