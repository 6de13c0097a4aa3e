"""The whole-suite leak scan: sensitive strings the tests used, output the provider produced, a final search.

`LeakScan` holds two things for one pytest session (it lives in `config.stash`, see tests/conftest.py):

- sensitive strings with a label: every secret and parameter value found in moto (`harvest_moto`, run
  before each moto reset), the STS credentials moto handed out, the service-account tokens and static
  credentials sent in Mount requests, the tokens built by `testkit.identity.jwt`, the Pod Identity
  agent's tokens and credentials, and whatever the provider itself wraps in SecretText or SecretBytes;
- captured text by source: every structlog and standard-library log line of in-process providers (the
  real `configure_logging` writing into a `TextSink`), stderr captured by pytest (children that inherit
  it), the whole log of each `provider-aws serve` child started by `testkit.serveproc`, every
  error message (each `ProviderError` and `GRPCError` built in-process, each error a grpcio client
  receives, grpcurl's stderr) and every /metrics body rendered in-process.

`scan()` looks for every value in every captured text, as written and JSON-escaped (logs are JSON).
Values shorter than 6 characters, and all-digit values shorter than 10 digits, are not searched: they
occur by chance in timestamps, durations and metric samples. File contents returned to clients and the
stdout of CLI tools are not captured: showing a value there is their purpose.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import grpc
import pytest
from google.protobuf.message import Message
from grpclib import GRPCError
from moto.secretsmanager.models import secretsmanager_backends
from moto.ssm.models import ssm_backends
from moto.sts.models import sts_backends

from provider_aws.attributes import TOKENS
from provider_aws.errors import ProviderError
from provider_aws.model import SecretBytes, SecretText
from provider_aws.ops.metrics import Metrics
from testkit import grpc_clients, identity, serveproc
from testkit.podagent import AgentState

__all__ = ["MIN_DIGITS", "MIN_LENGTH", "Hit", "LeakScan", "TextSink", "harvest_moto", "install", "report"]

MIN_LENGTH = 6
MIN_DIGITS = 10
# Request fields and secret holders also see the random strings of property tests: only longer ones
# are registered from there, so that a generated "serving" cannot match a log line by chance.
MIN_GENERATED = 12


@dataclass(frozen=True, slots=True)
class Hit:
    """A registered value (named by its label only) found in a captured text."""

    label: str
    source: str
    form: str


class TextSink:
    """A writable text stream (what structlog's PrintLogger and logging.StreamHandler need)."""

    def __init__(self, scan: LeakScan, source: str) -> None:
        self._scan = scan
        self._source = source

    def write(self, text: str) -> int:
        self._scan.add_text(self._source, text)
        return len(text)

    def flush(self) -> None:
        return


class LeakScan:
    """Registry of sensitive values and captured text; thread-safe (moto and clients run in threads)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values: dict[str, str] = {}
        self._generic: set[str] = set()
        self._texts: dict[str, list[str]] = {}

    def add_value(self, label: str, value: str | bytes, *, generic: bool = False) -> None:
        """Register `value`; the first specific label names it (a `generic` one only until then)."""
        if isinstance(value, bytes):
            try:
                value = value.decode("utf-8")
            except UnicodeDecodeError:
                return  # logs show bytes by length only; an undecodable value cannot be written as text
        with self._lock:
            if value not in self._values:
                self._values[value] = label
                if generic:
                    self._generic.add(value)
            elif not generic and value in self._generic:
                self._values[value] = label
                self._generic.discard(value)

    def add_text(self, source: str, text: str | bytes) -> None:
        if isinstance(text, bytes):
            text = text.decode("utf-8", errors="replace")
        if text:
            with self._lock:
                self._texts.setdefault(source, []).append(text)

    def sink(self, source: str) -> TextSink:
        return TextSink(self, source)

    def text(self, source: str) -> str:
        with self._lock:
            return "".join(self._texts.get(source, ()))

    def sources(self) -> tuple[str, ...]:
        with self._lock:
            return tuple(self._texts)

    def label(self, value: str) -> str | None:
        """The label `value` was registered under, if it was."""
        with self._lock:
            return self._values.get(value)

    def searched_values(self) -> int:
        with self._lock:
            return sum(1 for value in self._values if searched(value))

    def scan(self) -> tuple[Hit, ...]:
        with self._lock:
            values = [(value, label) for value, label in self._values.items() if searched(value)]
            texts = {source: "".join(parts) for source, parts in self._texts.items()}
        everything = "\x00".join(texts.values())  # one search per form first: hits are rare
        hits: list[Hit] = []
        for value, label in values:
            forms = {form: needle for form, needle in _forms(value).items() if needle in everything}
            for source, text in texts.items() if forms else ():
                found = next((form for form, needle in forms.items() if needle in text), None)
                if found is not None:
                    hits.append(Hit(label, source, found))
        return tuple(hits)


def searched(value: str) -> bool:
    """Whether a value is long and distinctive enough to search for without chance hits."""
    if len(value) < MIN_LENGTH:
        return False
    return not (value.isdigit() and len(value) < MIN_DIGITS)


def _forms(value: str) -> dict[str, str]:
    forms = {"as written": value}
    for name, escaped in (
        ("JSON-escaped", json.dumps(value)[1:-1]),
        ("JSON-escaped (unicode kept)", json.dumps(value, ensure_ascii=False)[1:-1]),
    ):
        if escaped not in forms.values():
            forms[name] = escaped
    return forms


def report(hits: tuple[Hit, ...]) -> list[str]:
    """Lines naming each leak by label and place; never the value itself."""
    lines = [f"leak scan: {len(hits)} registered value(s) found in captured output"]
    lines += [f"  {hit.label} ({hit.form}) in {hit.source}" for hit in hits]
    return lines


# --- sensitive values -------------------------------------------------------------------------------


def _json_leaves(value: Any, path: str = "") -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _json_leaves(item, f"{path}.{key}" if path else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _json_leaves(item, f"{path}[{index}]")
    elif isinstance(value, str):
        yield path, value


def add_secret_text(scan: LeakScan, label: str, value: str | bytes) -> None:
    """A secret's value, and each string inside it when it is JSON (jmesPath files show those)."""
    scan.add_value(label, value)
    try:
        parsed = json.loads(value)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return
    for path, leaf in _json_leaves(parsed):
        scan.add_value(f"{label} field {path}", leaf)


def _loaded(backends: Any) -> Iterator[tuple[str, str, Any]]:
    """(account, region, backend) for the backends moto already built, creating none."""
    for account, per_region in list(dict.items(backends)):
        for region, backend in list(dict.items(per_region)):
            yield account, region, backend


def harvest_moto(scan: LeakScan) -> None:
    """Register every value moto holds: secrets (all versions), parameters, STS credentials handed out."""
    for _, region, backend in _loaded(secretsmanager_backends):
        for name, secret in list(backend.secrets.items()):
            for version in list(getattr(secret, "versions", {}).values()):
                label = f"secretsmanager {region} {name}"
                if version.get("secret_string") is not None:
                    add_secret_text(scan, label, version["secret_string"])
                if version.get("secret_binary") is not None:
                    add_secret_text(scan, f"{label} (binary)", _binary(version["secret_binary"]))
    for _, region, backend in _loaded(ssm_backends):
        for name, versions in list(dict.items(backend._parameters)):
            for parameter in list(versions):
                value = parameter.decrypt(parameter.value)  # SecureString values are kept "encrypted"
                if value is not None:
                    add_secret_text(scan, f"ssm {region} {name}", value)
    for _, _, backend in _loaded(sts_backends):
        for role in list(backend.assumed_roles):
            scan.add_value(f"sts secret key of {role.session_name}", role.secret_access_key)
            scan.add_value(f"sts session token of {role.session_name}", role.session_token)


def _binary(stored: str | bytes) -> bytes:
    """moto keeps SecretBinary base64-encoded (as the wire carries it)."""
    try:
        return base64.b64decode(stored, validate=True)
    except (binascii.Error, ValueError):
        return stored.encode() if isinstance(stored, str) else stored


def add_request_credentials(scan: LeakScan, attributes: str, secrets: str) -> None:
    """The service-account tokens in `attributes` and every value in `secrets` (static credentials)."""
    try:
        tokens = json.loads(json.loads(attributes).get(TOKENS, "null"))
    except (ValueError, TypeError, AttributeError, RecursionError):
        tokens = None
    if isinstance(tokens, dict):
        for audience, entry in tokens.items():
            token = entry.get("token") if isinstance(entry, dict) else None
            if isinstance(token, str) and len(token) >= MIN_GENERATED:
                scan.add_value(f"service-account token for {audience}", token)
    try:
        parsed = json.loads(secrets)
    except (ValueError, RecursionError):
        return
    if isinstance(parsed, dict):
        for key, value in parsed.items():
            if isinstance(value, str) and key != "awsAccessKeyId" and len(value) >= MIN_GENERATED:
                scan.add_value(f"nodePublishSecretRef {key}", value)  # (a key id names a key: no secret)


# --- capture points ---------------------------------------------------------------------------------


def install(scan: LeakScan, monkeypatch: pytest.MonkeyPatch, source: str, module: ModuleType | None) -> None:
    """Wrap the capture points for one test (undone by `monkeypatch` when it ends)."""
    _wrap_grpc_errors(scan, monkeypatch, source)
    _wrap_provider_errors(scan, monkeypatch, source)
    _wrap_metrics(scan, monkeypatch, source)
    _wrap_secret_holders(scan, monkeypatch)
    _wrap_grpcio_client(scan, monkeypatch, source)
    _wrap_agent(scan, monkeypatch)
    _rebind(monkeypatch, module, identity, "jwt", _recording_jwt(scan, identity.jwt))
    child = _recording_child(scan, source, serveproc.serve_process)
    _rebind(monkeypatch, module, serveproc, "serve_process", child)
    _rebind(
        monkeypatch, module, grpc_clients, "grpcurl", _recording_grpcurl(scan, source, grpc_clients.grpcurl)
    )


def _rebind(
    monkeypatch: pytest.MonkeyPatch, module: ModuleType | None, home: ModuleType, name: str, new: Any
) -> None:
    """Replace `home.name`, and the test module's own binding of it (`from home import name`)."""
    original = getattr(home, name)
    monkeypatch.setattr(home, name, new)
    if module is not None and getattr(module, name, None) is original:
        monkeypatch.setattr(module, name, new)


def _wrap_grpc_errors(scan: LeakScan, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    original = GRPCError.__init__

    def init(self: GRPCError, status: Any, message: str | None = None, details: Any = None) -> None:
        if message:
            scan.add_text(f"{source} gRPC error", message)
        original(self, status, message, details)

    monkeypatch.setattr(GRPCError, "__init__", init)


def _wrap_provider_errors(scan: LeakScan, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    """Every ProviderError message: each becomes a gRPC message (and a pod event) in production."""

    original = ProviderError.__init__

    def init(self: ProviderError, *args: Any) -> None:
        original(self, *args)
        scan.add_text(f"{source} provider error", str(self))

    monkeypatch.setattr(ProviderError, "__init__", init)


def _wrap_secret_holders(scan: LeakScan, monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever the provider wraps as secret (fetched values, tokens, credentials) is registered."""
    text_init, bytes_init = SecretText.__init__, SecretBytes.__init__

    def init_text(self: SecretText, value: str) -> None:
        text_init(self, value)
        if len(value) >= MIN_GENERATED:
            scan.add_value("a SecretText (token or credential)", value, generic=True)

    def init_bytes(self: SecretBytes, value: bytes) -> None:
        bytes_init(self, value)
        if len(value) >= MIN_GENERATED:
            scan.add_value("a SecretBytes (secret value)", value, generic=True)

    monkeypatch.setattr(SecretText, "__init__", init_text)
    monkeypatch.setattr(SecretBytes, "__init__", init_bytes)


def _wrap_metrics(scan: LeakScan, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    original = Metrics.exposition

    def exposition(self: Metrics) -> bytes:
        body = original(self)
        scan.add_text(f"{source} /metrics", body)
        return body

    monkeypatch.setattr(Metrics, "exposition", exposition)


def _wrap_grpcio_client(scan: LeakScan, monkeypatch: pytest.MonkeyPatch, source: str) -> None:
    original = grpc_clients.GrpcioProviderClient._call

    def call(
        self: grpc_clients.GrpcioProviderClient,
        method: str,
        request: Any,
        reply: type[Message],
        timeout: float,
    ) -> Any:
        if method == "Mount":
            add_request_credentials(scan, request.attributes, request.secrets)
        try:
            return original(self, method, request, reply, timeout)
        except grpc.RpcError as error:
            details = error.details() if isinstance(error, grpc.Call) else str(error)
            scan.add_text(f"{source} gRPC error (grpcio client)", details or "")
            raise

    monkeypatch.setattr(grpc_clients.GrpcioProviderClient, "_call", call)


def _wrap_agent(scan: LeakScan, monkeypatch: pytest.MonkeyPatch) -> None:
    original = AgentState.accept

    @functools.wraps(original)
    def accept(self: AgentState, token: str, access_key_id: str, *args: Any, **kwargs: Any) -> None:
        scan.add_value("pod identity agent token", token)
        scan.add_value(f"pod identity agent secret key for {access_key_id}", f"secret-for-{access_key_id}")
        scan.add_value(
            f"pod identity agent session token for {access_key_id}", f"session-for-{access_key_id}"
        )
        original(self, token, access_key_id, *args, **kwargs)

    monkeypatch.setattr(AgentState, "accept", accept)


def _recording_jwt(scan: LeakScan, original: Callable[..., str]) -> Callable[..., str]:
    @functools.wraps(original)
    def jwt(*args: Any, **kwargs: Any) -> str:
        token = original(*args, **kwargs)
        scan.add_value("service-account token from testkit.identity.jwt", token)
        return token

    return jwt


def _recording_grpcurl(
    scan: LeakScan, source: str, original: Callable[..., Awaitable[grpc_clients.GrpcurlResult]]
) -> Callable[..., Awaitable[grpc_clients.GrpcurlResult]]:
    @functools.wraps(original)
    async def grpcurl(*args: Any, **kwargs: Any) -> grpc_clients.GrpcurlResult:
        result = await original(*args, **kwargs)
        scan.add_text(f"{source} grpcurl stderr", result.stderr)
        return result

    return grpcurl


def _log_of(path: Path) -> bytes:
    return path.read_bytes() if path.exists() else b""


def _recording_child(
    scan: LeakScan, source: str, original: Callable[..., AbstractAsyncContextManager[serveproc.ServeProcess]]
) -> Callable[..., AbstractAsyncContextManager[serveproc.ServeProcess]]:
    """A `provider-aws serve` child's whole output (stdout and stderr go to its log file), once it is gone."""

    @asynccontextmanager
    async def serve_process(
        socket_dir: Path, log_path: Path, *args: Any, **kwargs: Any
    ) -> AsyncIterator[serveproc.ServeProcess]:
        try:
            async with original(socket_dir, log_path, *args, **kwargs) as child:
                yield child
        finally:
            # Also when the child never became ready: a crash at start-up is logged there too.
            scan.add_text(f"{source} serve child log", _log_of(log_path))

    return serve_process
