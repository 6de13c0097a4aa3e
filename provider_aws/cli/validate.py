"""`provider-aws validate FILE...`: every offline problem of SecretProviderClass manifests."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

from provider_aws.request.parse import validate_parameters

__all__ = ["API_VERSIONS", "add_validate_arguments", "manifest_problems", "problems_in_file", "run_validate"]

_KIND = "SecretProviderClass"
_GROUP = "secrets-store.csi.x-k8s.io/"
API_VERSIONS = (f"{_GROUP}v1", f"{_GROUP}v1alpha1")


def manifest_problems(doc: dict[Any, Any]) -> tuple[list[str], dict[str, str] | None]:
    """What is wrong with a SecretProviderClass document around its parameters, and the
    parameters when they can be checked (provider aws, a map of strings to strings)."""
    problems = []
    if doc.get("apiVersion") not in API_VERSIONS:
        problems.append(f"apiVersion must be one of {', '.join(API_VERSIONS)}")
    spec = doc.get("spec") or {}
    if spec.get("provider") != "aws":
        problems.append(f'spec.provider is {spec.get("provider")!r}, not "aws"')
        return problems, None
    parameters = spec.get("parameters") or {}
    if not isinstance(parameters, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in parameters.items()
    ):
        problems.append("spec.parameters must map names to strings (quote every value)")
        return problems, None
    return problems, dict(parameters)


def add_validate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE", help="manifest (multi-document YAML)")
    parser.add_argument("--permission", default="0644", help="default file mode of the mount (octal)")


def _documents(path: Path) -> Iterator[tuple[int, Any]]:
    with path.open("r", encoding="utf-8") as stream:
        yield from enumerate(yaml.safe_load_all(stream))


def problems_in_file(path: Path, default_mode: int = 0o644) -> tuple[int, list[str]]:
    """(SecretProviderClasses checked, problems each prefixed with file, document and name)."""
    checked, problems = 0, list[str]()
    try:
        for index, doc in _documents(path):
            if not isinstance(doc, dict) or doc.get("kind") != _KIND:
                continue
            name = str((doc.get("metadata") or {}).get("name") or f"document {index}")
            where = f"{path}: {_KIND} {name}"
            checked += 1
            around, parameters = manifest_problems(doc)
            problems.extend(f"{where}: {problem}" for problem in around)
            if parameters is None:
                continue
            problems.extend(
                f"{where}: {problem}"
                for problem in validate_parameters(parameters, default_mode=default_mode)
            )
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        problems.append(f"{path}: cannot read: {type(error).__name__}: {error}")
    return checked, problems


def run_validate(args: argparse.Namespace) -> int:
    """Exit 0 when every SecretProviderClass is valid, 1 on problems, 2 when none was found."""
    try:
        default_mode = int(str(args.permission), 8)
    except ValueError:
        print(
            f"provider-aws validate: --permission {args.permission!r} is not an octal mode", file=sys.stderr
        )
        return 2
    total, problems = 0, []
    for path in args.files:
        checked, found = problems_in_file(path, default_mode)
        total += checked
        problems.extend(found)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} problem(s) in {total} SecretProviderClass(es)", file=sys.stderr)
        return 1
    if total == 0:
        print("no SecretProviderClass found", file=sys.stderr)
        return 2
    print(f"{total} SecretProviderClass(es) valid")
    return 0
