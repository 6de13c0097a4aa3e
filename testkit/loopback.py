"""A threaded HTTP server on a loopback address and a free port, for the tests' fake services."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

__all__ = ["LoopbackHttpServer", "QuietHandler"]


class QuietHandler(BaseHTTPRequestHandler):
    """The fake services' request handler: HTTP/1.1 keep-alive, no access log, whole-body replies."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        return

    def reply(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def reply_json(self, status: int, body: Mapping[str, Any]) -> None:
        self.reply(status, "application/json", json.dumps(body).encode())


class _Server(ThreadingHTTPServer):
    # socketserver's default backlog of 5 drops the SYNs of a burst of new connections, and
    # each dropped one costs the client a one-second retransmit.
    request_queue_size = 512


class _IPv6Server(_Server):
    address_family = socket.AF_INET6


class LoopbackHttpServer:
    """Start with `start()`, stop with `stop()`; `base_url` is `http://host:port` (`https://` with `tls`)."""

    def __init__(
        self,
        handler: type[BaseHTTPRequestHandler],
        host: str = "127.0.0.1",
        tls: ssl.SSLContext | None = None,
    ) -> None:
        server_class = _IPv6Server if ":" in host else _Server
        # TCP_NODELAY, as AWS's and Kubernetes' own servers answer: http.server writes headers and
        # body separately, and with Nagle's algorithm the body would wait for the client's delayed
        # ACK (up to 40 ms on Linux), a cost real endpoints do not add.
        handler.disable_nagle_algorithm = True
        self._server = server_class((host, 0), handler)
        self._server.daemon_threads = True
        self._scheme = "http"
        if tls is not None:
            # The handshake runs in the handler's thread (on its first read), not in the accepting one.
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
            self._scheme = "https"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        text = str(host)
        return f"{self._scheme}://[{text}]:{port}" if ":" in text else f"{self._scheme}://{text}:{port}"

    @property
    def url(self) -> str:
        return self.base_url

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)
