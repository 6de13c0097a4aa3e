"""`provider-aws mount`: the driver's side of a Mount, on a laptop.

Reads a SecretProviderClass, builds the MountRequest the way the Secrets Store CSI driver does, calls
Mount over the provider socket, applies the driver's checks to the answer and writes the files the way the
driver's atomic writer does (a timestamped directory and a `..data` symlink swap). It prints names, modes,
versions and sizes; never contents.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import binascii
import json
import os
import shutil
import sys
import tempfile
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path, PurePosixPath
from typing import Any

import yaml
from google.protobuf.message import Message
from grpclib import GRPCError
from grpclib.client import Channel, UnaryUnaryMethod

from provider_aws import attributes
from provider_aws.cli.validate import manifest_problems
from provider_aws.request.paths import path_problem
from provider_aws.rpc.messages import MOUNT_METHOD, MountRequest, MountResponse
from provider_aws.settings import DEFAULT_SOCKET_DIR, SOCKET_NAME

__all__ = [
    "DriverCheckError",
    "MountOptions",
    "SecretProviderClass",
    "add_mount_arguments",
    "build_request",
    "call_mount",
    "check_response",
    "format_table",
    "load_spc",
    "run_mount",
    "write_atomically",
]

DATA_DIR = "..data"
DEFAULT_TIMEOUT = 60.0


class DriverCheckError(Exception):
    """The answer, the manifest or the input files fail a check the driver would make."""


@dataclass(frozen=True, slots=True)
class SecretProviderClass:
    name: str
    parameters: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class MountOptions:
    target: Path
    namespace: str = "default"
    pod: str = "provider-aws-mount"
    pod_uid: str = ""
    service_account: str = "default"
    sts_token: str | None = None
    pod_identity_token: str | None = None
    secrets: Mapping[str, str] | None = None
    permission: int = 0o644


def load_spc(path: Path) -> SecretProviderClass:
    """The one SecretProviderClass for provider `aws` in a manifest file (v1 or v1alpha1)."""
    with path.open("r", encoding="utf-8") as stream:
        documents = [doc for doc in yaml.safe_load_all(stream) if isinstance(doc, dict)]
    found = [doc for doc in documents if doc.get("kind") == "SecretProviderClass"]
    if len(found) != 1:
        raise DriverCheckError(f"{path}: expected one SecretProviderClass, found {len(found)}")
    doc = found[0]
    problems, parameters = manifest_problems(doc)
    if problems or parameters is None:
        raise DriverCheckError(f"{path}: {problems[0]}")
    return SecretProviderClass(str((doc.get("metadata") or {}).get("name") or ""), parameters)


def load_secrets(path: Path) -> dict[str, str]:
    """A nodePublishSecretRef's data: a plain map, or a Kubernetes Secret manifest (data is base64)."""
    with path.open("r", encoding="utf-8") as stream:
        doc = yaml.safe_load(stream)
    if not isinstance(doc, dict):
        raise DriverCheckError(f"{path}: the secrets file must hold a map of names to strings")
    if doc.get("kind") == "Secret":
        values: dict[str, Any] = {}
        try:
            for key, value in (doc.get("data") or {}).items():
                values[key] = base64.b64decode(str(value), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError) as error:
            raise DriverCheckError(f"{path}: a data value is not base64 of UTF-8 text") from error
        values.update(doc.get("stringData") or {})
        doc = values
    if not all(isinstance(key, str) and isinstance(value, str) for key, value in doc.items()):
        raise DriverCheckError(f"{path}: the secrets file must map names to strings (quote every value)")
    return dict(doc)


def _token_expiry(token: str) -> str:
    """RFC 3339 expiry of a JWT from its unverified `exp` claim, else one hour from now."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        moment = datetime.fromtimestamp(int(claims["exp"]), UTC)
    except (IndexError, ValueError, KeyError, TypeError, binascii.Error, OverflowError):
        moment = datetime.now(UTC) + timedelta(hours=1)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_request(spc: SecretProviderClass, options: MountOptions) -> Message:
    """The MountRequest the driver sends for a pod using `spc` in an inline volume at `options.target`."""
    parameters = dict(spc.parameters)
    parameters.update(
        {
            attributes.SECRET_PROVIDER_CLASS: spc.name,
            attributes.POD_NAME: options.pod,
            attributes.POD_NAMESPACE: options.namespace,
            attributes.POD_UID: options.pod_uid or str(uuid.uuid4()),
            attributes.SERVICE_ACCOUNT: options.service_account,
            attributes.EPHEMERAL: "true",
        }
    )
    tokens = {
        audience: {"token": token, "expirationTimestamp": _token_expiry(token)}
        for audience, token in (
            (attributes.IRSA_AUDIENCE, options.sts_token),
            (attributes.POD_IDENTITY_AUDIENCE, options.pod_identity_token),
        )
        if token
    }
    if tokens:
        parameters[attributes.TOKENS] = json.dumps(tokens)
    return MountRequest(
        attributes=json.dumps(parameters),
        secrets="null" if options.secrets is None else json.dumps(dict(options.secrets)),
        target_path=str(options.target),
        permission=json.dumps(options.permission),
    )


async def call_mount(socket_path: Path, request: Message, call_timeout: float) -> Message:
    """Mount over the Unix socket; raises GRPCError, or OSError when nothing listens there."""
    channel = Channel(path=str(socket_path))
    try:
        mount = UnaryUnaryMethod[Message, Message](channel, MOUNT_METHOD, MountRequest, MountResponse)
        return await mount(request, timeout=call_timeout)
    finally:
        channel.close()


def unreachable_message(socket_path: Path, error: OSError) -> str:
    """What went wrong reaching the provider's socket, with the path tried and what to do about it."""
    hint = (
        f"start the provider with `provider-aws serve --socket-dir {socket_path.parent}`, "
        f"or pass --socket with the {SOCKET_NAME} path of a running `provider-aws serve`"
    )
    if socket_path.is_dir():
        return (
            f"{socket_path} is a directory, not the provider's socket: "
            f"pass --socket {socket_path / SOCKET_NAME} (the socket inside --socket-dir)"
        )
    if isinstance(error, FileNotFoundError):
        reason = "no such socket"
    elif isinstance(error, ConnectionRefusedError):
        reason = "nothing listens there (a socket left by a stopped provider?)"
    elif isinstance(error, PermissionError):
        reason = "permission denied (the socket is mode 0600: run as the user that runs serve)"
    else:
        reason = f"{type(error).__name__}: {error.strerror or error}"
    return f"cannot reach the provider at {socket_path}: {reason}; {hint}"


def check_response(response: Message) -> dict[str, str]:
    """The driver's checks on a MountResponse; returns id -> version."""
    if response.error.code:
        raise DriverCheckError(f"the provider answered with error code {response.error.code}")
    if not response.object_version:
        raise DriverCheckError("missing object versions: the answer has no object_version")
    for file in response.files:
        problem = path_problem(file.path)
        if problem is not None:
            raise DriverCheckError(problem)
        if not 0 <= file.mode <= 0o777:
            raise DriverCheckError(f"file {file.path!r} has mode {file.mode}, outside 0..511")
    return {item.id: item.version for item in response.object_version}


def write_atomically(target: Path, files: Sequence[Message]) -> None:
    """Replace the whole content of `target` with `files`, as the driver's atomic writer does.

    The files go into a fresh `..<timestamp>` directory; a `..data` symlink is swapped to it with one
    rename, and each top-level name is a symlink through `..data`. Names no longer present disappear.
    """
    target.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    fresh = Path(tempfile.mkdtemp(prefix=stamp, dir=target))
    for file in files:
        path = fresh / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "wb") as stream:
            stream.write(file.contents)
        os.chmod(path, file.mode)
    os.chmod(fresh, 0o755)
    data_link = target / DATA_DIR
    previous = os.readlink(data_link) if data_link.is_symlink() else None
    staged = target / f"{DATA_DIR}_tmp"
    staged.unlink(missing_ok=True)
    os.symlink(fresh.name, staged)
    os.replace(staged, data_link)
    wanted = {PurePosixPath(file.path).parts[0] for file in files}
    for name in wanted:
        link = target / name
        if not link.is_symlink():
            os.symlink(f"{DATA_DIR}/{name}", link)
    for entry in target.iterdir():
        if entry.name.startswith(".."):
            continue
        if entry.is_symlink() and entry.name not in wanted:
            entry.unlink()
    if previous is not None and previous != fresh.name:
        shutil.rmtree(target / previous, ignore_errors=True)


def format_table(files: Sequence[Message], versions: Mapping[str, str], *, contents: bool = False) -> str:
    """FILE, MODE, VERSION, SIZE per file; the contents column only when asked (the demo's fake data)."""
    header: tuple[str, ...] = ("FILE", "MODE", "VERSION", "SIZE") + (("CONTENTS",) if contents else ())
    rows: list[tuple[str, ...]] = [header]
    for file in sorted(files, key=lambda item: item.path):
        row: tuple[str, ...] = (
            file.path,
            f"{file.mode:04o}",
            versions.get(file.path, "-"),
            str(len(file.contents)),
        )
        if contents:
            row += (file.contents.decode("utf-8", errors="replace"),)
        rows.append(row)
    widths = [max(len(row[column]) for row in rows) for column in range(len(header) - 1)]
    return "\n".join(
        "  ".join([cell.ljust(width) for cell, width in zip(row, widths, strict=False)] + [row[-1]])
        for row in rows
    )


def add_mount_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--spc", required=True, type=Path, metavar="FILE", help="SecretProviderClass manifest"
    )
    parser.add_argument("--target", required=True, type=Path, metavar="DIR", help="directory to write into")
    parser.add_argument(
        "--socket",
        type=Path,
        default=Path(DEFAULT_SOCKET_DIR) / SOCKET_NAME,
        metavar="PATH",
        help=f"provider socket (default {DEFAULT_SOCKET_DIR}/{SOCKET_NAME})",
    )
    parser.add_argument("--namespace", default="default", help="the pod's namespace (default default)")
    parser.add_argument("--pod", default="provider-aws-mount", help="the pod's name")
    parser.add_argument("--service-account", default="default", help="the pod's ServiceAccount")
    parser.add_argument(
        "--token-file", type=Path, metavar="FILE", help="token for audience sts.amazonaws.com"
    )
    parser.add_argument(
        "--pod-identity-token-file",
        type=Path,
        metavar="FILE",
        help="pods.eks.amazonaws.com token",
    )
    parser.add_argument(
        "--secrets-file",
        type=Path,
        metavar="FILE",
        help="nodePublishSecretRef data: a map or a Secret",
    )
    parser.add_argument("--permission", default="0644", help="default file mode, octal (default 0644)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, help="seconds for the Mount call")


def _read_token(path: Path | None) -> str | None:
    return None if path is None else path.read_text(encoding="utf-8").strip()


def options_from_namespace(args: argparse.Namespace) -> MountOptions:
    try:
        permission = int(str(args.permission), 8)
    except ValueError as error:
        raise DriverCheckError(f"--permission {args.permission!r} is not an octal mode") from error
    if not 0 <= permission <= 0o777:
        raise DriverCheckError(f"--permission {args.permission!r} is outside 0000..0777")
    return MountOptions(
        target=args.target.absolute(),
        namespace=args.namespace,
        pod=args.pod,
        service_account=args.service_account,
        sts_token=_read_token(args.token_file),
        pod_identity_token=_read_token(args.pod_identity_token_file),
        secrets=None if args.secrets_file is None else load_secrets(args.secrets_file),
        permission=permission,
    )


async def mount_once(
    spc_path: Path, options: MountOptions, socket_path: Path, call_timeout: float = DEFAULT_TIMEOUT
) -> tuple[list[Message], dict[str, str]]:
    """Build, call, check and write: the whole driver side of one Mount. Raises on any failure."""
    request = build_request(load_spc(spc_path), options)
    try:
        response = await call_mount(socket_path, request, call_timeout)
    except OSError as error:
        raise DriverCheckError(unreachable_message(socket_path, error)) from error
    versions = check_response(response)
    write_atomically(options.target, response.files)
    return list(response.files), versions


def run_mount(args: argparse.Namespace) -> int:
    """Exit 0 on success; 1 with the provider's status and message (or the failed check) otherwise."""
    try:
        options = options_from_namespace(args)
        files, versions = asyncio.run(mount_once(args.spc, options, args.socket, args.timeout))
    except GRPCError as error:
        print(f"provider-aws mount: Mount failed: {error.status.name}: {error.message}", file=sys.stderr)
        return 1
    except DriverCheckError as error:
        print(f"provider-aws mount: {error}", file=sys.stderr)
        return 1
    except (OSError, yaml.YAMLError) as error:
        print(f"provider-aws mount: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except TimeoutError:
        print(f"provider-aws mount: no answer within {args.timeout} s", file=sys.stderr)
        return 1
    print(format_table(files, versions))
    print(f"{len(files)} file(s) written to {options.target}")
    return 0
