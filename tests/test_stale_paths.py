"""Comments and docstrings name only repository files that exist: a file moved or deleted takes the
text that points at it along (or the text is fixed), instead of leaving a reader to look for it."""

from __future__ import annotations

import ast
import io
import re
import subprocess
import tokenize
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# A path ending in one of the repository's own kinds of file: `aws/session.py`, `README.md`.
PATH = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w-]+\.(?:py|md|toml|ya?ml|sh|proto|json))(?![\w/])")
# Not ours to keep: files a command writes (build/ is not committed), absolute paths, and the
# Go projects' own files named where their behaviour is reproduced (the Go provider's installer
# manifest, the driver's protocol).
ELSEWHERE = ("build/", "/", "deployment/", "provider/v1alpha1/")
# A file name pattern rather than a file: `STEM.json`.
PLACEHOLDER = re.compile(r"(?:^|/)[A-Z_]+\.\w+$")


def tracked() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=30
    ).stdout.split()
    return [name for name in listed if (ROOT / name).exists()]


def prose(source: str) -> list[tuple[int, str]]:
    """(line, text) of every comment and docstring of a Python file."""
    found = [
        (token.start[0], token.string)
        for token in tokenize.generate_tokens(io.StringIO(source).readline)
        if token.type == tokenize.COMMENT
    ]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc is not None and node.body:
                found.append((node.body[0].lineno, doc))
    return found


def config_comments(text: str) -> list[tuple[int, str]]:
    return [(n, line) for n, line in enumerate(text.splitlines(), 1) if line.lstrip().startswith("#")]


def test_every_repository_path_named_in_a_comment_or_docstring_exists() -> None:
    files = tracked()
    known = set(files)
    missing = []
    for name in files:
        path = ROOT / name
        if name.endswith(".py") and not name.startswith("provider_aws/_proto/"):
            texts = prose(path.read_text())
        elif name in ("pyproject.toml", "Makefile", "Containerfile") or name.startswith(".ci/"):
            texts = config_comments(path.read_text())
        else:
            continue
        for line, text in texts:
            for named in PATH.findall(text):
                if named.startswith(ELSEWHERE) or PLACEHOLDER.search(named) or named in known:
                    continue
                # Named from inside its package (`aws/session.py`) or by its file name alone.
                if any(other.endswith("/" + named) for other in known):
                    continue
                missing.append(f"{name}:{line}: {named}")
    assert missing == [], "comments and docstrings name files that do not exist:\n" + "\n".join(missing)
