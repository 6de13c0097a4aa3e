"""A loopback stand-in for the few kube-apiserver paths the provider reads.

It answers GET for ServiceAccounts, Pods and Nodes with the API's own JSON shapes,
404/403/500 as `Status` objects, and counts every request by resource.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from testkit.loopback import LoopbackHttpServer, QuietHandler

if TYPE_CHECKING:
    from testkit.tls import LoopbackCertificate

_PATHS = (
    (re.compile(r"^/api/v1/namespaces/([^/]+)/serviceaccounts/([^/?]+)$"), "serviceaccounts"),
    (re.compile(r"^/api/v1/namespaces/([^/]+)/pods/([^/?]+)$"), "pods"),
    (re.compile(r"^/api/v1/nodes/([^/?]+)$"), "nodes"),
)


@dataclass
class KubeState:
    # (namespace, name) -> annotations
    service_accounts: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)
    # (namespace, name) -> node name ("" for an unscheduled pod)
    pods: dict[tuple[str, str], str] = field(default_factory=dict)
    # node name -> labels
    nodes: dict[str, dict[str, str]] = field(default_factory=dict)
    # resource -> HTTP status to answer instead (403 or 5xx)
    faults: dict[str, int] = field(default_factory=dict)
    delay: float = 0.0
    gets: Counter[str] = field(default_factory=Counter)
    # GETs being answered now, and the most at once (what a client-side rate limit would cap).
    in_flight: int = 0
    max_in_flight: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def count(self, resource: str | None = None) -> int:
        with self.lock:
            return sum(self.gets.values()) if resource is None else self.gets[resource]


def _meta(name: str, namespace: str | None = None, **extra: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "uid": f"uid-{name}", "resourceVersion": "1", **extra}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def _status(code: int, reason: str, message: str, kind: str, name: str) -> dict[str, Any]:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": {"name": name, "kind": kind},
        "code": code,
    }


def _fault(code: int, resource: str, name: str) -> tuple[int, dict[str, Any]]:
    if code == 403:
        user = "system:serviceaccount:kube-system:csi-secrets-store-provider-aws"
        message = f'{resource} "{name}" is forbidden: User "{user}" cannot get resource "{resource}"'
        return 403, _status(403, "Forbidden", message, resource, name)
    return code, _status(code, "InternalError", "an error on the server", resource, name)


def _object(state: KubeState, resource: str, groups: tuple[str, ...]) -> dict[str, Any] | None:
    """The stored object in the API's JSON shape, or None when there is none."""
    name = groups[-1]
    if resource == "serviceaccounts":
        annotations = state.service_accounts.get((groups[0], name))
        if annotations is None:
            return None
        meta = _meta(name, groups[0], annotations=annotations) if annotations else _meta(name, groups[0])
        return {"kind": "ServiceAccount", "apiVersion": "v1", "metadata": meta}
    if resource == "pods":
        node = state.pods.get((groups[0], name))
        if node is None:
            return None
        spec: dict[str, Any] = {"containers": [{"name": "app", "image": "busybox"}]}
        if node:
            spec["nodeName"] = node
        return {"kind": "Pod", "apiVersion": "v1", "metadata": _meta(name, groups[0]), "spec": spec}
    labels = state.nodes.get(name)
    if labels is None:
        return None
    return {"kind": "Node", "apiVersion": "v1", "metadata": _meta(name, labels=labels)}


def _answer(state: KubeState, resource: str, groups: tuple[str, ...]) -> tuple[int, dict[str, Any]]:
    name = groups[-1]
    fault = state.faults.get(resource)
    if fault is not None:
        return _fault(fault, resource, name)
    found = _object(state, resource, groups)
    if found is None:
        return 404, _status(404, "NotFound", f'{resource} "{name}" not found', resource, name)
    return 200, found


def _handler(state: KubeState) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            for pattern, resource in _PATHS:
                match = pattern.match(path)
                if match:
                    with state.lock:
                        state.gets[resource] += 1
                        state.in_flight += 1
                        state.max_in_flight = max(state.max_in_flight, state.in_flight)
                        delay = state.delay
                    try:
                        if delay:
                            time.sleep(delay)
                        code, body = _answer(state, resource, match.groups())
                    finally:
                        with state.lock:
                            state.in_flight -= 1
                    self.reply_json(code, body)
                    return
            message = "the server could not find the requested resource"
            self.reply_json(404, _status(404, "NotFound", message, "", ""))

    return Handler


class FakeKubeApi(LoopbackHttpServer):
    """Start with `start()`, stop with `stop()`; `write_kubeconfig` points a client at it.

    With `certificate`, it serves HTTPS (client-go, the Go provider's client, sends its bearer token
    only over HTTPS) and the kubeconfig names the certificate as the cluster's authority.
    """

    def __init__(self, certificate: LoopbackCertificate | None = None) -> None:
        self.state = KubeState()
        self.certificate = certificate
        tls = None if certificate is None else certificate.server_context()
        super().__init__(_handler(self.state), tls=tls)

    def write_kubeconfig(self, path: Path) -> Path:
        authority = None if self.certificate is None else self.certificate.cert
        return write_kubeconfig(path, self.url, authority)


def write_kubeconfig(path: Path, server: str, authority: Path | None = None) -> Path:
    """A kubeconfig whose current context talks to `server` with a bearer token (trusting `authority`)."""
    cluster: dict[str, str] = {"server": server}
    if authority is not None:
        cluster["certificate-authority"] = str(authority)
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "fake", "cluster": cluster}],
        "users": [{"name": "provider", "user": {"token": "kube-api-test-token"}}],
        "contexts": [{"name": "fake", "context": {"cluster": "fake", "user": "provider"}}],
        "current-context": "fake",
    }
    path.write_text(yaml.safe_dump(config))
    return path
