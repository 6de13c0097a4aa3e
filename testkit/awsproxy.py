"""A loopback HTTP proxy in front of moto's server that counts and can break requests.

Requests are counted by (service, operation) and by SigV4 region, each with its start
and end time, so tests can assert how many calls a Mount made and that they overlapped.
Faults are chosen per SigV4 region (and optionally per operation); a `gate` (the fleet
simulation's account quotas) may answer a request that no fault stopped.
"""

from __future__ import annotations

import asyncio
import http.client
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs

from testkit.loopback import LoopbackHttpServer, QuietHandler

_CREDENTIAL_SCOPE = re.compile(r"Credential=([^/]+)/\d{8}/([^/]+)/([^/]+)/aws4_request")


@dataclass(frozen=True)
class Fault:
    """What to do instead of forwarding: an HTTP error body, a reset, or a delay first."""

    status: int = 500
    code: str = "InternalFailure"
    message: str = "injected fault"
    reset: bool = False
    delay: float = 0.0
    forward_after_delay: bool = False
    # The Query protocol's XML error (STS) instead of the JSON protocol's body.
    xml: bool = False


@dataclass(frozen=True)
class Call:
    service: str
    operation: str
    region: str
    start: float
    end: float
    status: int
    access_key_id: str = ""
    # The client's (host, port): one per TCP connection, so connection reuse is countable.
    peer: tuple[str, int] = ("", 0)
    body: bytes = b""
    user_agent: str = ""


@dataclass
class ProxyState:
    upstream: tuple[str, int]
    delay: float = 0.0
    calls: list[Call] = field(default_factory=list)
    # (region, operation or "*") -> fault
    faults: dict[tuple[str, str], Fault] = field(default_factory=dict)
    in_flight: int = 0
    max_in_flight: int = 0
    # (service, operation, region) -> a fault to answer instead, or None; asked when no fault applies.
    gate: Callable[[str, str, str], Fault | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, operation: str | None = None, service: str | None = None) -> int:
        with self.lock:
            return sum(
                1
                for c in self.calls
                if (operation is None or c.operation == operation)
                and (service is None or c.service == service)
            )

    async def wait_until(self, done: Callable[[ProxyState], bool], limit: float) -> None:
        """Poll until `done` (the proxy threads set no event on the loop); TimeoutError after `limit`."""
        async with asyncio.timeout(limit):
            while not done(self):  # noqa: ASYNC110 - polled, see the docstring
                await asyncio.sleep(0.02)

    def operations(self) -> Counter[str]:
        with self.lock:
            return Counter(c.operation for c in self.calls)

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.faults.clear()
            self.gate = None
            self.in_flight = 0
            self.max_in_flight = 0
            self.delay = 0.0


def _operation(headers: dict[str, str], body: bytes) -> str:
    target = headers.get("x-amz-target")
    if target:
        return target.rsplit(".", 1)[-1]
    fields = parse_qs(body.decode("utf-8", "replace"))
    action = fields.get("Action")
    return action[0] if action else "unknown"


def _xml_error(fault: Fault) -> bytes:
    """An error as the Query protocol (STS) sends it."""
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{fault.code}</Code><Message>{fault.message}</Message></Error>"
        "<RequestId>proxy-0001</RequestId></ErrorResponse>"
    ).encode()


def _handler(state: ProxyState) -> type[QuietHandler]:
    class Handler(QuietHandler):
        _record: Callable[[int], None]

        def do_POST(self) -> None:
            self._proxy()

        def do_GET(self) -> None:
            self._proxy()

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            headers = {k.lower(): v for k, v in self.headers.items()}
            scope = _CREDENTIAL_SCOPE.search(headers.get("authorization", ""))
            key_id, region, service = (
                (scope.group(1), scope.group(2), scope.group(3)) if scope else ("", "", "")
            )
            peer = (str(self.client_address[0]), int(self.client_address[1]))
            operation = _operation(headers, body)
            start = time.monotonic()
            with state.lock:
                state.in_flight += 1
                state.max_in_flight = max(state.max_in_flight, state.in_flight)
                fault = state.faults.get((region, operation)) or state.faults.get((region, "*"))
                delay, gate = state.delay, state.gate
            if fault is None and gate is not None:
                fault = gate(service, operation, region)
            recorded = False

            def record(status: int) -> None:
                # Recorded before the answer is sent, so a client that has its answer sees the count.
                nonlocal recorded
                if recorded:
                    return
                recorded = True
                with state.lock:
                    state.in_flight -= 1
                    state.calls.append(
                        Call(
                            service,
                            operation,
                            region,
                            start,
                            time.monotonic(),
                            status,
                            key_id,
                            peer,
                            body,
                            headers.get("user-agent", ""),
                        )
                    )

            self._record = record
            try:
                if delay:
                    time.sleep(delay)
                if fault is not None and fault.delay:
                    time.sleep(fault.delay)
                if fault is not None and not fault.forward_after_delay:
                    self._fault(fault)
                else:
                    self._forward(body)
            finally:
                record(0)

        def _fault(self, fault: Fault) -> int:
            if fault.reset:
                self._record(0)
                self.close_connection = True
                self.connection.shutdown(2)
                return 0
            if fault.xml:
                payload = _xml_error(fault)
                self.send_response(fault.status)
                self.send_header("Content-Type", "text/xml")
            else:
                payload = (
                    '{"__type":"%s","message":"%s"}' % (fault.code, fault.message)  # noqa: UP031
                ).encode()
                self.send_response(fault.status)
                self.send_header("Content-Type", "application/x-amz-json-1.1")
                self.send_header("x-amzn-ErrorType", fault.code)
            self.send_header("Content-Length", str(len(payload)))
            self._record(fault.status)
            self.end_headers()
            self.wfile.write(payload)
            return fault.status

        def _forward(self, body: bytes) -> int:
            conn = http.client.HTTPConnection(*state.upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in {"connection"}}
                conn.request(self.command, self.path, body=body, headers=headers)
                response = conn.getresponse()
                payload = response.read()
                self.send_response(response.status)
                for key, value in response.getheaders():
                    if key.lower() not in {
                        "content-length",
                        "connection",
                        "transfer-encoding",
                        "server",
                        "date",
                    }:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self._record(response.status)
                self.end_headers()
                self.wfile.write(payload)
                return response.status
            finally:
                conn.close()

    return Handler


class AwsProxy(LoopbackHttpServer):
    """Start with `start()`, stop with `stop()`; `url` is what AWS_ENDPOINT_URL should be."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.state = ProxyState(upstream=upstream)
        super().__init__(_handler(self.state))
