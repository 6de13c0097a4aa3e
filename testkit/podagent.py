"""A loopback stand-in for the EKS Pod Identity agent's credentials endpoint.

It hands out credentials only for the tokens it was told about (sent as the bare
`Authorization` header, as the real agent expects), refuses others with 403, and counts
requests. It listens on 127.0.0.1 or [::1].
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from testkit.loopback import LoopbackHttpServer, QuietHandler

PATH = "/v1/credentials"


@dataclass
class AgentState:
    # token -> (access key id, lifetime)
    accepted: dict[str, tuple[str, timedelta]] = field(default_factory=dict)
    # answer every request with this HTTP status (and a JSON error) instead
    fail_status: int | None = None
    # seconds to wait before answering (an agent slower than the provider's timeout)
    delay: float = 0.0
    # Authorization headers received, in order (tests only).
    authorizations: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def accept(self, token: str, access_key_id: str, lifetime: timedelta = timedelta(hours=6)) -> None:
        with self.lock:
            self.accepted[token] = (access_key_id, lifetime)

    @property
    def requests(self) -> int:
        with self.lock:
            return len(self.authorizations)


def _handler(state: AgentState) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            token = self.headers.get("Authorization", "")
            with state.lock:
                state.authorizations.append(token)
                fail = state.fail_status
                grant = state.accepted.get(token)
                delay = state.delay
            if delay:
                time.sleep(delay)
            if self.path != PATH:
                self.reply_json(404, {"code": "NotFound", "message": "no such path"})
            elif fail is not None:
                self.reply_json(fail, {"code": "ServiceUnavailable", "message": "agent is failing"})
            elif grant is None:
                message = f"the service account token is invalid: {token}"  # echoes it, like a careless agent
                self.reply_json(403, {"code": "AccessDeniedException", "message": message})
            else:
                key_id, lifetime = grant
                expiration = datetime.now(UTC) + lifetime
                self.reply_json(
                    200,
                    {
                        "AccessKeyId": key_id,
                        "SecretAccessKey": f"secret-for-{key_id}",
                        "Token": f"session-for-{key_id}",
                        "AccountId": "123456789012",
                        "Expiration": expiration.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    },
                )

    return Handler


class FakePodIdentityAgent(LoopbackHttpServer):
    def __init__(self, host: str = "127.0.0.1", state: AgentState | None = None) -> None:
        self.state = state if state is not None else AgentState()
        super().__init__(_handler(self.state), host)

    @property
    def url(self) -> str:
        return f"{self.base_url}{PATH}"


def closed_port_url(host: str = "127.0.0.1") -> str:
    """A URL on a loopback port nothing listens on (connections are refused)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        port = probe.getsockname()[1]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}{PATH}"
