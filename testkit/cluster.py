"""A real Kubernetes control plane on loopback: etcd and kube-apiserver, nothing else.

etcd comes from Debian's etcd-server package and kube-apiserver is built by `make cluster` (pinned in
tests/kubeapiserver/go.mod) into build/bin. `running_cluster()` starts both on free loopback ports with
a private data directory, serving TLS from a CA made for the run, authorising with RBAC, signing
ServiceAccount tokens (so the TokenRequest API mints audience-bound tokens) and writing an audit log
of every request; it yields a `Cluster` and stops both processes by their PID when the block ends.

No kubelet, scheduler or controller manager runs: objects are stored, validated and authorised for
real, and nothing acts on them. Namespaces get no `default` ServiceAccount; tests create what they use.
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import os
import secrets
import shutil
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeAlias

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID
from lightkube import Client, KubeConfig
from lightkube.codecs import load_all_yaml
from lightkube.core.exceptions import ApiError, LoadResourceError
from lightkube.core.resource import GlobalResource, NamespacedResource
from lightkube.generic_resource import load_in_cluster_generic_resources
from lightkube.models.authentication_v1 import BoundObjectReference, TokenRequestSpec
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apiextensions_v1 import CustomResourceDefinition
from lightkube.resources.core_v1 import ServiceAccount

from testkit.motoproc import free_port, stop

__all__ = [
    "ADMIN_USER",
    "ISSUER",
    "KUBE_APISERVER",
    "Cluster",
    "ClusterUnavailable",
    "running_cluster",
]

ROOT = Path(__file__).resolve().parent.parent
KUBE_APISERVER = ROOT / "build" / "bin" / "kube-apiserver"
HOST = "127.0.0.1"
ADMIN_USER = "e2e-admin"
ISSUER = "https://kubernetes.default.svc.cluster.local"
# Only a setting of the API server (Service IPs are allocated from it); no traffic goes there.
SERVICE_CIDR = "10.96.0.0/12"
FIELD_MANAGER = "provider-aws-e2e"
Manifest: TypeAlias = GlobalResource | NamespacedResource
# Bounds: a cold kube-apiserver on a busy two-core machine takes 10-30 s to become ready.
ETCD_START_TIMEOUT = 60.0
APISERVER_START_TIMEOUT = 180.0
CRD_TIMEOUT = 30.0
LOG_TAIL = 3000

# Every request at Metadata level: who asked for what, and the answer's code (never a body).
AUDIT_POLICY = {"apiVersion": "audit.k8s.io/v1", "kind": "Policy", "rules": [{"level": "Metadata"}]}


class ClusterUnavailable(RuntimeError):
    """A part of the control plane is missing or did not start; the message says how to fix it."""


@dataclass(frozen=True)
class Cluster:
    """A running control plane: where it listens, how to trust it, and an admin identity."""

    host: str
    port: int
    ca_file: Path  # the CA that signed the serving certificate: a pod's ca.crt
    admin_token: str
    kubeconfig: Path  # the admin's
    directory: Path
    audit_log: Path
    admin: Client  # lightkube, synchronous, as the admin (system:masters); closed with the cluster

    @property
    def server(self) -> str:
        return f"https://{self.host}:{self.port}"

    def config(self) -> KubeConfig:
        return KubeConfig.from_file(self.kubeconfig)

    def client_as(self, token: str) -> Client:
        """A new synchronous lightkube client presenting `token` (a ServiceAccount's, say): close it."""
        config = KubeConfig.from_dict(_kubeconfig(self.server, self.ca_file, token))
        return Client(config=config, field_manager=FIELD_MANAGER)

    def apply(self, manifests: str | Iterable[Manifest], client: Client | None = None) -> list[Manifest]:
        """Server-side apply (forced) of YAML text or lightkube objects, in order, as `kubectl apply
        --server-side` would, by the admin unless `client` is given; CustomResourceDefinitions are
        waited for until established."""
        kube = client or self.admin
        objects = list(_load(manifests, kube))
        applied = []
        for obj in objects:
            applied.append(kube.apply(obj, force=True))
            if isinstance(obj, CustomResourceDefinition) and obj.metadata and obj.metadata.name:
                _wait_established(kube, obj.metadata.name)
                load_in_cluster_generic_resources(kube)
        return applied

    def token(
        self,
        namespace: str,
        service_account: str,
        audiences: Sequence[str] = (),
        seconds: int = 3600,
        pod: tuple[str, str] | None = None,
    ) -> str:
        """A TokenRequest token of `service_account`, as the kubelet mints them; `pod` is the (name,
        uid) the token is bound to, as the kubelet binds the tokens it hands to CSI drivers."""
        bound = BoundObjectReference(apiVersion="v1", kind="Pod", name=pod[0], uid=pod[1]) if pod else None
        request = ServiceAccount.Token(
            metadata=ObjectMeta(name=service_account, namespace=namespace),
            spec=TokenRequestSpec(audiences=list(audiences), expirationSeconds=seconds, boundObjectRef=bound),
        )
        answer = self.admin.create(request, service_account, namespace=namespace)
        assert answer.status is not None
        return str(answer.status.token)

    def audit_events(self, user: str | None = None) -> list[dict[str, Any]]:
        """The audit log's ResponseComplete events so far, of `user` when given."""
        if not self.audit_log.exists():
            return []
        events = []
        for line in self.audit_log.read_text().splitlines():
            event = json.loads(line)
            if event.get("stage") != "ResponseComplete":
                continue
            if user is None or event.get("user", {}).get("username") == user:
                events.append(event)
        return events


@contextmanager
def running_cluster() -> Iterator[Cluster]:
    """etcd and kube-apiserver on loopback for the block; ClusterUnavailable when a part is missing."""
    etcd = _etcd_binary()
    apiserver = _apiserver_binary()
    directory = Path(tempfile.mkdtemp(prefix="provider-aws-cluster-", dir=_fast_tmp()))
    try:
        with ExitStack() as stack:
            pki = _write_pki(directory)
            etcd_url = stack.enter_context(_etcd(etcd, directory))
            admin_token = secrets.token_urlsafe(32)
            (directory / "tokens.csv").write_text(
                f'{admin_token},{ADMIN_USER},{ADMIN_USER},"system:masters"\n'
            )
            (directory / "audit-policy.yaml").write_text(yaml.safe_dump(AUDIT_POLICY))
            port = stack.enter_context(_apiserver(apiserver, directory, etcd_url, pki, admin_token))
            kubeconfig = directory / "admin.kubeconfig"
            _write_kubeconfig(kubeconfig, f"https://{HOST}:{port}", pki.ca, admin_token)
            admin = stack.enter_context(
                Client(config=KubeConfig.from_file(kubeconfig), field_manager=FIELD_MANAGER)
            )
            yield Cluster(
                host=HOST,
                port=port,
                ca_file=pki.ca,
                admin_token=admin_token,
                kubeconfig=kubeconfig,
                directory=directory,
                audit_log=directory / "audit.log",
                admin=admin,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def _etcd_binary() -> str:
    found = shutil.which("etcd")
    if found is None:
        raise ClusterUnavailable(
            "etcd is not installed: run `make cluster` (as root it installs etcd-server)"
        )
    return found


def _apiserver_binary() -> Path:
    if not os.access(KUBE_APISERVER, os.X_OK):
        raise ClusterUnavailable(f"no kube-apiserver at {KUBE_APISERVER}: run `make cluster` to build it")
    return KUBE_APISERVER


def _fast_tmp() -> str | None:
    # etcd syncs every write: on tmpfs that costs nothing.
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and os.access(shm, os.W_OK) else None


@dataclass(frozen=True)
class _Pki:
    ca: Path
    serving_cert: Path
    serving_key: Path
    sa_public: Path
    sa_private: Path


def _write_pki(directory: Path) -> _Pki:
    """A CA for the run, a serving certificate for loopback and the in-cluster names, and the
    ServiceAccount signing key pair."""
    now = datetime.datetime.now(datetime.UTC)
    lifetime = datetime.timedelta(days=1)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "provider-aws-e2e-ca")])
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
        )
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "kube-apiserver")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + lifetime)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(name) for name in names] + [x509.IPAddress(ipaddress.ip_address(HOST))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pki = _Pki(
        ca=directory / "ca.crt",
        serving_cert=directory / "apiserver.crt",
        serving_key=directory / "apiserver.key",
        sa_public=directory / "sa.pub",
        sa_private=directory / "sa.key",
    )
    pki.ca.write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(_private_pem(key))
    pki.sa_private.write_bytes(_private_pem(sa_key))
    pki.sa_public.write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return pki


def _private_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@contextmanager
def _etcd(binary: str, directory: Path) -> Iterator[str]:
    client_port, peer_port = free_port(), free_port()
    client_url, peer_url = f"http://{HOST}:{client_port}", f"http://{HOST}:{peer_port}"
    command = [
        binary,
        "--name=e2e",
        f"--data-dir={directory / 'etcd'}",
        f"--listen-client-urls={client_url}",
        f"--advertise-client-urls={client_url}",
        f"--listen-peer-urls={peer_url}",
        f"--initial-advertise-peer-urls={peer_url}",
        f"--initial-cluster=e2e={peer_url}",
        "--listen-metrics-urls=",
        "--log-level=warn",
        "--logger=zap",
    ]
    log = directory / "etcd.log"
    with _process(command, log) as process:
        _wait_until_ready(process, log, f"{client_url}/health", timeout=ETCD_START_TIMEOUT)
        yield client_url


@contextmanager
def _apiserver(binary: Path, directory: Path, etcd_url: str, pki: _Pki, admin_token: str) -> Iterator[int]:
    port = free_port()
    command = [
        str(binary),
        f"--etcd-servers={etcd_url}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--secure-port={port}",
        f"--cert-dir={directory / 'certs'}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--token-auth-file={directory / 'tokens.csv'}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={ISSUER}",
        f"--service-account-key-file={pki.sa_public}",
        f"--service-account-signing-key-file={pki.sa_private}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--endpoint-reconciler-type=none",
        # The driver's node plugin runs privileged; its DaemonSet is refused without this.
        "--allow-privileged=true",
        f"--audit-policy-file={directory / 'audit-policy.yaml'}",
        f"--audit-log-path={directory / 'audit.log'}",
        "--audit-log-format=json",
        "--audit-log-mode=blocking",
        "--profiling=false",
        "--v=1",
    ]
    log = directory / "kube-apiserver.log"
    with _process(command, log) as process:
        context = ssl.create_default_context(cafile=str(pki.ca))
        url = f"https://{HOST}:{port}/readyz"
        _wait_until_ready(
            process, log, url, timeout=APISERVER_START_TIMEOUT, context=context, token=admin_token
        )
        yield port


@contextmanager
def _process(command: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as sink:
        process = subprocess.Popen(command, stdout=sink, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        yield process
    finally:
        stop(process)


def _wait_until_ready(
    process: subprocess.Popen[bytes],
    log: Path,
    url: str,
    *,
    timeout: float,
    context: ssl.SSLContext | None = None,
    token: str | None = None,
) -> None:
    name = log.stem
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    while True:
        if process.poll() is not None:
            raise ClusterUnavailable(f"{name} exited with {process.returncode}:\n{_tail(log)}")
        request = urllib.request.Request(url)
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with urllib.request.urlopen(request, timeout=5, context=context) as answer:
                if answer.status == 200:
                    return
        except urllib.error.HTTPError as error:
            last = f"HTTP {error.code}"
        except OSError as error:
            last = str(error)
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"{name} not ready within {timeout:.0f} s ({last}):\n{_tail(log)}")
        time.sleep(0.25)


def _tail(log: Path) -> str:
    return log.read_text(errors="replace")[-LOG_TAIL:]


def _write_kubeconfig(path: Path, server: str, ca_file: Path, token: str) -> None:
    path.touch(mode=0o600)
    path.write_text(yaml.safe_dump(_kubeconfig(server, ca_file, token)))


def _kubeconfig(server: str, ca_file: Path, token: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "e2e",
                "cluster": {"server": server, "certificate-authority": str(ca_file)},
            }
        ],
        "users": [{"name": "e2e", "user": {"token": token}}],
        "contexts": [{"name": "e2e", "context": {"cluster": "e2e", "user": "e2e"}}],
        "current-context": "e2e",
    }


def _load(manifests: str | Iterable[Manifest], client: Client) -> Iterator[Manifest]:
    if not isinstance(manifests, str):
        yield from manifests
        return
    try:
        yield from load_all_yaml(manifests, create_resources_for_crds=True)
    except LoadResourceError:
        # A kind defined by a CustomResourceDefinition applied earlier.
        load_in_cluster_generic_resources(client)
        yield from load_all_yaml(manifests, create_resources_for_crds=True)


def _wait_established(client: Client, name: str) -> None:
    deadline = time.monotonic() + CRD_TIMEOUT
    while True:
        try:
            crd = client.get(CustomResourceDefinition, name)
        except ApiError:
            crd = None
        conditions = (crd.status.conditions or []) if crd and crd.status else []
        if any(c.type == "Established" and c.status == "True" for c in conditions):
            return
        if time.monotonic() > deadline:
            raise ClusterUnavailable(
                f"CustomResourceDefinition {name} not established within {CRD_TIMEOUT:.0f} s"
            )
        time.sleep(0.2)
