"""A loopback relay in front of STS (moto) that records each AssumeRoleWithWebIdentity.

moto accepts any token and forgets it; the isolation tests need to see which token each
exchange carried. The relay can also answer with a real STS XML error instead.
"""

from __future__ import annotations

import http.client
import threading
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlsplit

from testkit.loopback import LoopbackHttpServer, QuietHandler


@dataclass(frozen=True)
class Exchange:
    role_arn: str
    session_name: str
    token: str


@dataclass
class RelayState:
    exchanges: list[Exchange] = field(default_factory=list)
    # (HTTP status, STS error code) to answer instead of forwarding
    error: tuple[int, str] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)


def _error_body(code: str, message: str) -> bytes:
    return (
        '<ErrorResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        f"<Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
        "<RequestId>relay-0001</RequestId></ErrorResponse>"
    ).encode()


def _handler(state: RelayState, upstream: tuple[str, int]) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            fields = {k: v[0] for k, v in parse_qs(body.decode()).items()}
            with state.lock:
                if fields.get("Action") == "AssumeRoleWithWebIdentity":
                    state.exchanges.append(
                        Exchange(
                            fields.get("RoleArn", ""),
                            fields.get("RoleSessionName", ""),
                            fields.get("WebIdentityToken", ""),
                        )
                    )
                error = state.error
            if error is not None:
                token = fields.get("WebIdentityToken", "")
                payload = _error_body(error[1], f"Not authorized; token {token} rejected")
                self.reply(error[0], "text/xml", payload)
                return
            conn = http.client.HTTPConnection(*upstream, timeout=30)
            try:
                headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
                conn.request("POST", self.path, body=body, headers=headers)
                response = conn.getresponse()
                self.reply(response.status, response.getheader("Content-Type", "text/xml"), response.read())
            finally:
                conn.close()

    return Handler


class StsRelay(LoopbackHttpServer):
    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self.state = RelayState()
        upstream = (parts.hostname or "127.0.0.1", parts.port or 80)
        super().__init__(_handler(self.state, upstream))
