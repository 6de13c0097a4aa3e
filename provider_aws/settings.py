"""`provider-aws serve` configuration: flags over environment variables, pure.

The Go provider's flags are accepted too, with its meaning, so that its Helm chart, its installer
manifest and the EKS add-on can run this image with the args they render (see `add_serve_arguments`).
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, TypeVar, get_type_hints

__all__ = [
    "GO_FALSE",
    "GO_FLAGS",
    "GO_IGNORED",
    "GO_TRUE",
    "Flag",
    "Option",
    "Settings",
    "add_serve_arguments",
    "go_duration",
    "go_style_args",
    "ignored_go_flags",
    "serve_flags",
    "settings_from_namespace",
]

_T = TypeVar("_T")

DEFAULT_SOCKET_DIR = "/var/run/secrets-store-csi-providers"
SOCKET_NAME = "aws.sock"


@dataclass(frozen=True, slots=True)
class Option:
    """How a setting is given to `provider-aws serve`: `--NAME` (the field's name in kebab-case),
    `env` if set, and `go` (the Go provider's spelling of the same flag) if it has one."""

    help: str
    env: str | None = None
    go: str | None = None
    # How the Go spelling's value is read, when not as the setting's own type (a Go duration).
    go_type: Callable[[str], Any] | None = None
    go_metavar: str = "VALUE"
    # The only values accepted, from the flag or the environment; anything else stops start-up.
    choices: tuple[str, ...] | None = None


def _option(default: _T, help_text: str, **option: Any) -> _T:
    """A Settings field that is a serve flag; its type is the field's annotation."""
    return field(default=default, metadata={"option": Option(help_text, **option)})


def _go_timeout(text: str) -> float | None:
    return go_duration(text) if text.strip() else None


@dataclass(frozen=True, slots=True)
class Settings:
    """Every setting of `provider-aws serve`, each defined once: a field with an `Option` is a flag
    (type, default, flag, environment variable, help and Go spelling), read by the parser, the
    README's table (scripts/architecture.py) and the chart test; the rest come from elsewhere."""

    socket_dir: Path = _option(
        Path(DEFAULT_SOCKET_DIR),
        "directory of `aws.sock`",
        env="PROVIDER_SOCKET_DIR",
        go="provider-volume",
        go_metavar="DIR",
    )
    http_addr: str = _option(
        "0.0.0.0:8989",
        "`HOST:PORT` (`[V6]:PORT`, `:PORT`) of `/healthz`, `/readyz`, `/metrics`; empty disables",
        env="PROVIDER_HTTP_ADDR",
    )
    log_format: str = _option(
        "json", "`json` or `console`", env="PROVIDER_LOG_FORMAT", choices=("json", "console")
    )
    log_level: str = _option(
        "info",
        "`debug`, `info`, `warning` or `error`",
        env="PROVIDER_LOG_LEVEL",
        choices=("debug", "info", "warning", "error"),
    )
    pod_identity_endpoint_ipv4: str = _option(
        "http://169.254.170.23/v1/credentials", "EKS Pod Identity agent URL (IPv4)"
    )
    pod_identity_endpoint_ipv6: str = _option(
        "http://[fd00:ec2::23]/v1/credentials", "EKS Pod Identity agent URL (IPv6)"
    )
    pod_identity_timeout: float = _option(
        5.0,
        "seconds to wait for the agent",
        go="pod-identity-http-timeout",
        go_type=_go_timeout,
        go_metavar="DURATION",
    )
    max_concurrency: int = _option(
        64, "process-wide limit of concurrent AWS requests", env="PROVIDER_MAX_CONCURRENCY"
    )
    aws_max_attempts: int = _option(
        3,
        "attempts per AWS request (botocore standard retry mode, first try included)",
        env="PROVIDER_AWS_MAX_ATTEMPTS",
    )
    aws_connect_timeout: float = _option(5.0, "seconds to connect to AWS")
    aws_read_timeout: float = _option(10.0, "seconds to wait for an AWS answer")
    batch_fallback_ttl: float = _option(
        300.0, "seconds a refused `BatchGetSecretValue` is remembered per identity and region"
    )
    batch_min_secrets: int = _option(
        4,
        "fewest unpinned secrets of one identity and region worth a `BatchGetSecretValue` (fewer go "
        "through `GetSecretValue`); see [At fleet scale](#at-fleet-scale)",
        env="PROVIDER_BATCH_MIN_SECRETS",
    )
    batch_backoff_base: float = _option(
        2.0,
        "seconds an identity and region stop batching after a throttled or failed batch; jittered "
        "(half to all of it), doubled after each further throttle",
        env="PROVIDER_BATCH_BACKOFF_BASE",
    )
    batch_backoff_max: float = _option(
        120.0, "bound of that pause, seconds", env="PROVIDER_BATCH_BACKOFF_MAX"
    )
    batch_rate: float = _option(
        0.0,
        "`BatchGetSecretValue` requests per second this node may send (it may hold one second of "
        "them, at least one request); `0` leaves it to the account's quota. For a fleet: 80 / nodes",
        env="PROVIDER_BATCH_RATE",
    )
    credential_cache_size: int = _option(
        4096, "credentials and ServiceAccount look-ups kept at most (0 disables caching)"
    )
    credential_refresh_margin: float = _option(300.0, "seconds before expiry that credentials are renewed")
    service_account_ttl: float = _option(30.0, "seconds a ServiceAccount look-up is reused")
    value_cache_bytes: int = _option(
        64 * 1024 * 1024,
        "memory bound of the rotation value cache, 64 MiB by default (0 disables)",
        env="PROVIDER_VALUE_CACHE_BYTES",
    )
    value_cache_max_age: float = _option(
        120.0,
        "seconds a secret value stays in the rotation value cache after AWS returned it, at most the "
        "driver's default rotation interval (0 disables the cache); see SECURITY.md",
        env="PROVIDER_VALUE_CACHE_MAX_AGE",
    )
    refuse_static_credentials: bool = _option(
        False,
        "refuse static credentials (`awsAccessKeyId`/`awsSecretAccessKey` in a mount's "
        "`nodePublishSecretRef`): such Mounts fail with `PERMISSION_DENIED`",
        env="PROVIDER_REFUSE_STATIC_CREDENTIALS",
    )
    coalesce_window: float = _option(
        5.0,
        "seconds a rotation check is shared across pods of one identity (0 disables)",
        env="PROVIDER_COALESCE_WINDOW",
    )
    shutdown_grace: float = _option(25.0, "seconds Mounts in flight get to finish on SIGTERM")
    default_mount_timeout: float = _option(60.0, "seconds a Mount without a gRPC deadline may take")
    # From AWS_REGION / AWS_DEFAULT_REGION and NODE_NAME.
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


@dataclass(frozen=True, slots=True)
class Flag:
    """One serve flag of the table, as the parser and the README read it."""

    name: str
    dest: str
    kind: Callable[[str], Any]
    default: Any
    option: Option


def serve_flags() -> tuple[Flag, ...]:
    """The Settings fields that are flags, in declaration order."""
    hints = get_type_hints(Settings)
    return tuple(
        Flag(item.name.replace("_", "-"), item.name, hints[item.name], item.default, item.metadata["option"])
        for item in fields(Settings)
        if "option" in item.metadata
    )


def _plain(text: str) -> str:
    """Help text without the README's markdown (code spans, links)."""
    return re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", text).replace("`", "")


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
    go = parser.add_argument_group("the Go provider's flags (its chart, installer manifest and EKS add-on)")
    for flag in serve_flags():
        option = flag.option
        kind = _go_bool if flag.kind is bool else flag.kind
        default = flag.default
        if option.env is not None and option.env in environ:
            default = _from_environment(parser, option, kind, environ[option.env])
        help_text = f"{_plain(option.help)} (default {default!s}" + (
            f"; env {option.env})" if option.env else ")"
        )
        action = _Aliased if option.go else "store"
        # A boolean flag alone means true; `--NAME=false` (or the environment) can say false.
        boolean: dict[str, Any] = {"nargs": "?", "const": True, "metavar": "BOOL"} if kind is _go_bool else {}
        parser.add_argument(
            f"--{flag.name}",
            dest=flag.dest,
            type=kind,
            default=default,
            help=help_text,
            action=action,
            choices=option.choices,
            **boolean,
        )
        if option.go is not None:
            go.add_argument(
                f"--{option.go}",
                dest=flag.dest,
                type=option.go_type or flag.kind,
                action=_Aliased,
                metavar=option.go_metavar,
                help=f"same as --{flag.name}" + (", as a Go duration (250ms, 2s)" if option.go_type else ""),
            )
    for name, keywords in _GO_ONLY.items():
        go.add_argument(f"--{name}", **keywords)


def _from_environment(
    parser: argparse.ArgumentParser, option: Option, kind: Callable[[str], Any], text: str
) -> Any:
    """An environment variable's value, refused (exit 2) as the flag's own would be."""
    try:
        value = kind(text)
    except (ValueError, argparse.ArgumentTypeError) as error:
        parser.error(f"{option.env}={text!r}: {error}")
    if option.choices is not None and value not in option.choices:
        parser.error(f"{option.env}={text!r}: choose from {', '.join(option.choices)}")
    return value


def settings_from_namespace(args: argparse.Namespace, environ: Mapping[str, str]) -> Settings:
    values = {flag.dest: getattr(args, flag.dest) for flag in serve_flags()}
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
# The Go provider's flags that change nothing here, and why: the help says so and `provider-aws
# serve` logs it once when one is given (`ignored_go_flags`).
_NO_RATE_LIMIT = (
    "this provider sets no client-side Kubernetes rate limit; it caches its look-ups and makes no GET "
    "on a warm Mount"
)
GO_IGNORED: dict[str, str] = {
    "driver-writes-secrets": "this provider always returns the files to the driver, which writes them",
    "qps": _NO_RATE_LIMIT,
    "burst": _NO_RATE_LIMIT,
}
_IGNORED = "accepted and ignored: "
_GO_ONLY: dict[str, dict[str, Any]] = {
    "driver-writes-secrets": {**_GO_BOOL, "help": _IGNORED + GO_IGNORED["driver-writes-secrets"]},
    "qps": {"dest": "kube_qps", "type": int, "metavar": "N", "help": _IGNORED + GO_IGNORED["qps"]},
    "burst": {"dest": "kube_burst", "type": int, "metavar": "N", "help": _IGNORED + GO_IGNORED["burst"]},
    "eks-addon-version": {
        "default": "",
        "metavar": "VERSION",
        "help": "the EKS add-on version, reported in the user agent of AWS requests",
    },
    "log-format-json": {**_GO_BOOL, "default": False, "help": "true: same as --log-format json"},
}

# The Go provider's flags (its main.go): our flags' Go spellings, then its own.
GO_FLAGS = tuple(flag.option.go for flag in serve_flags() if flag.option.go) + tuple(_GO_ONLY)


def ignored_go_flags(settings: Settings) -> list[tuple[str, Any, str]]:
    """(flag, value, why) of each given Go provider flag that changes nothing here."""
    given = {
        "driver-writes-secrets": settings.driver_writes_secrets,
        "qps": settings.kube_qps,
        "burst": settings.kube_burst,
    }
    return [(flag, value, GO_IGNORED[flag]) for flag, value in given.items() if value is not None]
