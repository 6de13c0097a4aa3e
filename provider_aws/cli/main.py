"""`provider-aws`: serve, mount, validate, version."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Mapping, Sequence

import structlog

from provider_aws import __version__, semver
from provider_aws.app import observed_provider
from provider_aws.cli.drivermount import add_mount_arguments, run_mount
from provider_aws.cli.validate import add_validate_arguments, run_validate
from provider_aws.errors import ProviderError
from provider_aws.ops.health import health_endpoint
from provider_aws.ops.logs import configure_logging
from provider_aws.rpc.server import SocketWatch, serve_until_signal
from provider_aws.settings import (
    Settings,
    add_serve_arguments,
    go_style_args,
    ignored_go_flags,
    settings_from_namespace,
)

__all__ = ["main", "serve_settings"]


async def _serve(settings: Settings) -> None:
    watch = SocketWatch()
    async with (
        observed_provider(settings) as served,
        health_endpoint(settings.http_addr, settings.socket_path, served.metrics, watch=watch),
    ):
        await serve_until_signal(settings, served.handler, observer=served.observer, watch=watch)


def log_go_flags(settings: Settings) -> None:
    """Say once which of the Go provider's flags that change nothing here were given, and why."""
    log = structlog.get_logger(__name__)
    for flag, value, why in ignored_go_flags(settings):
        log.info(f"--{flag} accepted and ignored: {why}", **{flag.replace("-", "_"): value})


def run_serve(settings: Settings) -> int:
    configure_logging(settings.log_format, settings.log_level)
    log_go_flags(settings)
    try:
        asyncio.run(_serve(settings))
    except ProviderError as error:
        structlog.get_logger(__name__).error("cannot serve", error=error.message)
        print(f"provider-aws: {error.message}", file=sys.stderr)
        return 1
    return 0


def _parser(environ: Mapping[str, str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="provider-aws", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the provider on DIR/aws.sock")
    add_serve_arguments(serve, environ)
    commands.add_parser("version", help="print the version")
    add_validate_arguments(
        commands.add_parser("validate", help="check SecretProviderClass manifests offline")
    )
    add_mount_arguments(
        commands.add_parser("mount", help="mount a SecretProviderClass into DIR, as the driver does")
    )
    return parser


def _parse(words: list[str], environ: Mapping[str, str]) -> argparse.Namespace:
    if words[:1] == ["serve"]:
        words = ["serve", *go_style_args(words[1:])]
    parser = _parser(environ)
    args, unknown = parser.parse_known_args(words)
    if unknown:
        parser.error(
            f"unrecognized arguments: {' '.join(unknown)}; `provider-aws {args.command} --help` lists "
            "the flags" + (", the Go provider's among them" if args.command == "serve" else "")
        )
    return args


def serve_settings(argv: Sequence[str], environ: Mapping[str, str]) -> Settings:
    """The Settings of `provider-aws serve ARGV...`: its flags (the Go provider's too) over `environ`
    over the defaults."""
    return settings_from_namespace(_parse(["serve", *argv], environ), environ)


def main(argv: Sequence[str] | None = None, environ: Mapping[str, str] | None = None) -> int:
    env = os.environ if environ is None else environ
    words = sys.argv[1:] if argv is None else list(argv)
    if words[:1] == ["serve"]:
        return run_serve(serve_settings(words[1:], env))
    args = _parse(words, env)
    if args.command == "version":
        print(semver(__version__))
        return 0
    if args.command == "validate":
        return run_validate(args)
    if args.command == "mount":
        return run_mount(args)
    raise AssertionError(f"unhandled command {args.command}")
