"""Every file or folder of this repository that the README or SECURITY.md names exists.

A name counts when it starts with a top-level folder of the repository (`manifests/base`,
`tests/test_chart.py`) or, in the package's own terms, with one of provider_aws's parts
(`aws/clients.py`, `mounter.py`). Generated places (`build/`, `.venv/`) are left out: `make` makes them.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "provider_aws"
DOCUMENTS = ("README.md", "SECURITY.md")
GENERATED = frozenset({"build", ".venv", "dist"})
TOP_LEVEL = frozenset(
    path.name for path in ROOT.iterdir() if path.is_dir() and path.name not in {*GENERATED, ".git"}
)
# provider_aws's subpackages, which the README names paths from (`aws/clients.py`).
SUBPACKAGES = frozenset(
    path.name for path in PACKAGE.iterdir() if path.is_dir() and not path.name.startswith("_")
)
# A bare file name (`mounter.py`) must be the name of some file of the repository.
FILE_NAMES = frozenset(
    Path(line).name
    for line in subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True, timeout=60
    ).stdout.splitlines()
)
# A path-like word: letters, digits and ._-*/ with at least one slash, or a Python file name; `*` globs.
WORD = re.compile(r"(?<![\w./:*-])([\w.*-]+(?:/[\w.*-]*)+|[\w-]+\.py)(?![\w/])")


def named_paths(text: str) -> set[str]:
    """Path-like words inside code spans and fenced code blocks."""
    code = re.findall(r"```.*?```", text, re.DOTALL) + re.findall(r"`([^`\n]+)`", text)
    found: set[str] = set()
    for piece in code:
        for word in WORD.findall(piece):
            first = word.split("/")[0]
            if first in TOP_LEVEL or first in SUBPACKAGES if "/" in word else word.endswith(".py"):
                found.add(word.rstrip("."))
    return found


def resolves(word: str) -> bool:
    if "/" not in word:
        return word in FILE_NAMES
    if "*" in word:
        return any(ROOT.glob(word)) or any(PACKAGE.glob(word))
    return (ROOT / word).exists() or (PACKAGE / word).exists()


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_repository_path_named_exists(document: str) -> None:
    named = named_paths((ROOT / document).read_text(encoding="utf-8"))
    assert len(named) > 5 if document == "README.md" else named is not None
    missing = sorted(word for word in named if not resolves(word))
    assert missing == [], f"{document} names paths this repository does not have: {missing}"


def test_the_check_sees_what_it_should() -> None:
    text = "`manifests/base/pod.yaml`, `aws/clients.py`, `mounter.py`, ```kubectl apply -k manifests/nope```"
    assert named_paths(text) == {"manifests/base/pod.yaml", "aws/clients.py", "mounter.py", "manifests/nope"}
    assert not resolves("manifests/nope") and resolves("aws/clients.py")
    assert resolves("mounter.py") and not resolves("mount.py")
    assert resolves("tests/request/test_parse*.py") and not resolves("tests/test_parse*.py")
    # URLs, Kubernetes names, host paths and generated places are not repository paths
    others = "`https://x.io/a/b` `eks.amazonaws.com/role-arn` `/run/x/a.sock` `build/bin/helm` `app/db`"
    assert named_paths(others) == set()
