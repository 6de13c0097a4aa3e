"""`provider-aws serve` configuration: flags over environment variables, pure.

The Go provider's flags are accepted too, with its meaning, so that its Helm chart, its installer
manifest and the EKS add-on can run this image with the args they render (see `_add_go_flags`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "GO_FALSE",
    "GO_FLAGS",
    "GO_TRUE",
    "Settings",
    "add_serve_arguments",
    "go_duration",
    "go_style_args",
    "parse_args",
    "settings_from_namespace",
]

DEFAULT_SOCKET_DIR = "/var/run/secrets-store-csi-providers"
SOCKET_NAME = "aws.sock"


@dataclass(frozen=True, slots=True)
class Settings:
    socket_dir: Path = Path(DEFAULT_SOCKET_DIR)
    http_addr: str = "0.0.0.0:8989"
    log_format: str = "json"
    log_level: str = "info"
    pod_identity_endpoint_ipv4: str = "http://169.254.170.23/v1/credentials"
    pod_identity_endpoint_ipv6: str = "http://[fd00:ec2::23]/v1/credentials"
    pod_identity_timeout: float = 5.0
    # Process-wide bound on concurrent AWS requests.
    max_concurrency: int = 64
    # Attempts per AWS request in botocore's standard retry mode (first try included).
    aws_max_attempts: int = 3
    aws_connect_timeout: float = 5.0
    aws_read_timeout: float = 10.0
    # How long a refused BatchGetSecretValue is remembered per identity and region.
    batch_fallback_ttl: float = 300.0
    # A BatchGetSecretValue only for at least this many unpinned secrets of one identity and region.
    batch_min_secrets: int = 4
    # Jittered back-off of batching after a throttle: first wait, and its doubling bound.
    batch_backoff_base: float = 2.0
    batch_backoff_max: float = 120.0
    # This node's BatchGetSecretValue budget (requests/s); 0 = none (the account's quota decides).
    batch_rate: float = 0.0
    credential_cache_size: int = 4096
    # Credentials are refreshed this long before they expire.
    credential_refresh_margin: float = 300.0
    service_account_ttl: float = 30.0
    value_cache_bytes: int = 64 * 1024 * 1024
    coalesce_window: float = 5.0
    shutdown_grace: float = 25.0
    # Used when a Mount carries no deadline of its own.
    default_mount_timeout: float = 60.0
    aws_region: str | None = None
    node_name: str | None = None
    # The Go provider's flags that change nothing here, kept to say so at start-up (None: not given).
    driver_writes_secrets: bool | None = None
    kube_qps: int | None = None
    kube_burst: int | None = None
    # Reported in the user agent of every AWS request, as the Go provider does.
    eks_addon_version: str = ""

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME

    @property
    def user_agent_extra(self) -> str:
        """Appended to the provider's user agent (aws/session.py names the provider): the add-on's
        version, as the Go provider reports it; empty without one."""
        return f"eksAddonVersion/{self.eks_addon_version}" if self.eks_addon_version else ""


# flag -> (env var, type, help); flags are kebab-case, env vars the interface's names.
_FLAGS: dict[str, tuple[str | None, type, str]] = {
    "socket-dir": ("PROVIDER_SOCKET_DIR", Path, "directory of the aws.sock socket"),
    "http-addr": ("PROVIDER_HTTP_ADDR", str, "HOST:PORT for /healthz, /readyz, /metrics; empty disables"),
    "log-format": ("PROVIDER_LOG_FORMAT", str, "json or console"),
    "log-level": ("PROVIDER_LOG_LEVEL", str, "debug, info, warning or error"),
    "pod-identity-endpoint-ipv4": (None, str, "EKS Pod Identity agent credentials URL (IPv4)"),
    "pod-identity-endpoint-ipv6": (None, str, "EKS Pod Identity agent credentials URL (IPv6)"),
    "pod-identity-timeout": (None, float, "seconds to wait for the Pod Identity agent"),
    "max-concurrency": ("PROVIDER_MAX_CONCURRENCY", int, "process-wide limit of concurrent AWS requests"),
    "aws-max-attempts": ("PROVIDER_AWS_MAX_ATTEMPTS", int, "attempts per AWS request (standard retry mode)"),
    "aws-connect-timeout": (None, float, "seconds to connect to AWS"),
    "aws-read-timeout": (None, float, "seconds to wait for an AWS answer"),
    "batch-fallback-ttl": (None, float, "seconds a refused BatchGetSecretValue is remembered"),
    "batch-min-secrets": (
        "PROVIDER_BATCH_MIN_SECRETS",
        int,
        "fewest unpinned secrets of one identity and region worth a BatchGetSecretValue",
    ),
    "batch-backoff-base": (
        "PROVIDER_BATCH_BACKOFF_BASE",
        float,
        "seconds batching pauses after a throttle (jittered, doubling)",
    ),
    "batch-backoff-max": ("PROVIDER_BATCH_BACKOFF_MAX", float, "bound of the batching pause, seconds"),
    "batch-rate": (
        "PROVIDER_BATCH_RATE",
        float,
        "BatchGetSecretValue requests/s this node may send (0: no budget of its own)",
    ),
    "credential-cache-size": (None, int, "credentials kept at most (0 disables caching)"),
    "credential-refresh-margin": (None, float, "seconds before expiry that credentials are renewed"),
    "service-account-ttl": (None, float, "seconds a ServiceAccount look-up is reused"),
    "value-cache-bytes": (
        "PROVIDER_VALUE_CACHE_BYTES",
        int,
        "memory bound of the rotation value cache (0 disables)",
    ),
    "coalesce-window": (
        "PROVIDER_COALESCE_WINDOW",
        float,
        "seconds a rotation check is shared across pods (0 disables)",
    ),
    "shutdown-grace": (None, float, "seconds in-flight Mounts get to finish on SIGTERM"),
    "default-mount-timeout": (None, float, "seconds a Mount without a gRPC deadline may take"),
}


def _dest(flag: str) -> str:
    return flag.replace("-", "_")


# Our flags that the Go provider spells otherwise (--provider-volume, --pod-identity-http-timeout):
# both spellings given must agree, whichever comes first.
_ALIASED = frozenset({"socket-dir", "pod-identity-timeout"})


class _Aliased(argparse.Action):
    """Stores the value and refuses a different one already given under the other spelling."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: Any,
        option_string: str | None = None,
    ) -> None:
        if values is None:  # an empty Go duration: keep the default, as the Go provider does
            return
        given: dict[str, tuple[str, Any]] = namespace.__dict__.setdefault("_given", {})
        earlier = given.get(self.dest)
        if earlier is not None and earlier[0] != option_string and earlier[1] != values:
            parser.error(
                f"{earlier[0]} {earlier[1]} and {option_string} {values} disagree; they set the same "
                "thing, so give one of them (or the same value to both)"
            )
        given[self.dest] = (str(option_string), values)
        setattr(namespace, self.dest, values)


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Declare serve's flags; defaults come from the environment, then from Settings."""
    base = Settings()
    for flag, (env, kind, text) in _FLAGS.items():
        default = getattr(base, _dest(flag))
        if env is not None and env in environ:
            default = kind(environ[env])
        help_text = f"{text} (default {default!s}" + (f"; env {env})" if env else ")")
        action = _Aliased if flag in _ALIASED else "store"
        parser.add_argument(
            f"--{flag}", dest=_dest(flag), type=kind, default=default, help=help_text, action=action
        )
    _add_go_flags(parser)


def settings_from_namespace(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    values = {_dest(flag): getattr(args, _dest(flag)) for flag in _FLAGS}
    if args.log_format_json:
        values["log_format"] = "json"
    return Settings(
        **values,
        aws_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        node_name=environ.get("NODE_NAME") or None,
        driver_writes_secrets=args.driver_writes_secrets,
        kube_qps=args.kube_qps,
        kube_burst=args.kube_burst,
        eks_addon_version=args.eks_addon_version,
    )


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings for `serve` from its flags (highest), the environment, then defaults."""
    parser = argparse.ArgumentParser(prog="provider-aws serve")
    add_serve_arguments(parser, environ)
    return settings_from_namespace(parser.parse_args(go_style_args(argv)), environ)


# ---- the Go provider's flags -------------------------------------------------------------------

_GO_UNITS = {
    "ns": 1e-9,
    "us": 1e-6,
    "\u00b5s": 1e-6,
    "\u03bcs": 1e-6,
    "ms": 1e-3,
    "s": 1.0,
    "m": 60.0,
    "h": 3600.0,
}
_GO_DURATION = re.compile(r"(\d+\.?\d*|\.\d+)(ns|us|\u00b5s|\u03bcs|ms|s|m|h)")
# Go's strconv.ParseBool spellings: the Go provider reads its boolean flags and the
# SecretProviderClass's usePodIdentity with it (request/parse.py uses these too).
GO_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
GO_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})


def go_duration(text: str) -> float:
    """Seconds from a Go duration (`250ms`, `2s`, `1m30s`); must be positive."""
    rest = text.strip().lstrip("+")
    seconds = 0.0
    while rest:
        match = _GO_DURATION.match(rest)
        if match is None:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a Go duration: a number and a unit (ns, us, ms, s, m, h), e.g. 250ms or 2s"
            )
        seconds += float(match.group(1)) * _GO_UNITS[match.group(2)]
        rest = rest[match.end() :]
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive duration, e.g. 250ms or 2s")
    return seconds


def _go_timeout(text: str) -> float | None:
    return go_duration(text) if text.strip() else None


def _go_bool(text: str) -> bool:
    if text in GO_TRUE:
        return True
    if text in GO_FALSE:
        return False
    raise argparse.ArgumentTypeError(f"{text!r} is not a boolean: use true or false")


def go_style_args(argv: Sequence[str]) -> list[str]:
    """argv with the Go provider's one-dash flags (`-qps=5`, as Go's flag package allows) spelt with
    two, as argparse reads them."""
    names = tuple(f"-{flag}" for flag in GO_FLAGS)
    return [f"-{arg}" if arg.split("=", 1)[0] in names else arg for arg in argv]


_GO_BOOL: dict[str, Any] = {"nargs": "?", "const": True, "type": _go_bool, "metavar": "BOOL"}
_IGNORED = "accepted and ignored"
# flag -> add_argument keywords; `dest` ties an alias to the setting of the flag it stands for.
_GO_ARGUMENTS: dict[str, dict[str, Any]] = {
    "provider-volume": {
        "dest": "socket_dir",
        "type": Path,
        "action": _Aliased,
        "metavar": "DIR",
        "help": "same as --socket-dir",
    },
    "pod-identity-http-timeout": {
        "dest": "pod_identity_timeout",
        "type": _go_timeout,
        "action": _Aliased,
        "metavar": "DURATION",
        "help": "same as --pod-identity-timeout, as a Go duration (250ms, 2s)",
    },
    "driver-writes-secrets": {
        **_GO_BOOL,
        "help": f"{_IGNORED}: this provider always returns the files to the driver, which writes them",
    },
    "qps": {
        "dest": "kube_qps",
        "type": int,
        "metavar": "N",
        "help": f"{_IGNORED}: no client-side Kubernetes rate limit (look-ups are cached)",
    },
    "burst": {"dest": "kube_burst", "type": int, "metavar": "N", "help": f"{_IGNORED}, as --qps"},
    "eks-addon-version": {
        "default": "",
        "metavar": "VERSION",
        "help": "the EKS add-on version, reported in the user agent of AWS requests",
    },
    "log-format-json": {**_GO_BOOL, "default": False, "help": "true: same as --log-format json"},
}


def _add_go_flags(parser: argparse.ArgumentParser) -> None:
    go = parser.add_argument_group("the Go provider's flags (its chart, installer manifest and EKS add-on)")
    for flag, keywords in _GO_ARGUMENTS.items():
        go.add_argument(f"--{flag}", **keywords)


# The Go provider's flags (its main.go), in the order it declares them.
GO_FLAGS = tuple(_GO_ARGUMENTS)
