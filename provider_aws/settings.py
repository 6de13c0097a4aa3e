"""`provider-aws serve` configuration: flags over environment variables, pure."""

from __future__ import annotations

import argparse
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Settings", "add_serve_arguments", "parse_args", "settings_from_namespace"]

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

    @property
    def socket_path(self) -> Path:
        return self.socket_dir / SOCKET_NAME


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


def add_serve_arguments(parser: argparse.ArgumentParser, environ: Mapping[str, str]) -> None:
    """Declare serve's flags; defaults come from the environment, then from Settings."""
    base = Settings()
    for flag, (env, kind, text) in _FLAGS.items():
        default = getattr(base, _dest(flag))
        if env is not None and env in environ:
            default = kind(environ[env])
        help_text = f"{text} (default {default!s}" + (f"; env {env})" if env else ")")
        parser.add_argument(f"--{flag}", dest=_dest(flag), type=kind, default=default, help=help_text)


def settings_from_namespace(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    values = {_dest(flag): getattr(args, _dest(flag)) for flag in _FLAGS}
    return Settings(
        **values,
        aws_region=environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or None,
        node_name=environ.get("NODE_NAME") or None,
    )


def parse_args(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """Settings for `serve` from its flags (highest), the environment, then defaults."""
    parser = argparse.ArgumentParser(prog="provider-aws serve")
    add_serve_arguments(parser, environ)
    return settings_from_namespace(parser.parse_args(list(argv)), environ)
