"""The wheel as a user installs it: built from this tree into a clean virtual environment with only
the runtime dependencies (no test or demo extras), where every module imports and the command runs.

Also checks that every third-party module the package imports is declared in pyproject.toml.
"""

from __future__ import annotations

import ast
import importlib.metadata
import shutil
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "provider_aws"
INSTALL_TIMEOUT = 600.0
RUN_TIMEOUT = 120.0


def imported_top_level_modules() -> set[str]:
    found: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"provider_aws"}


def declared_distributions() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return {Requirement(line).name.lower().replace("_", "-") for line in project["dependencies"]}


def test_every_imported_module_comes_from_a_declared_dependency() -> None:
    providers = importlib.metadata.packages_distributions()
    declared = declared_distributions()
    undeclared = {}
    for module in sorted(imported_top_level_modules()):
        owners = {name.lower().replace("_", "-") for name in providers.get(module, [])}
        assert owners, f"{module} is imported but no installed distribution provides it"
        if not owners & declared:
            undeclared[module] = sorted(owners)
    assert undeclared == {}, f"imported by provider_aws but not in [project] dependencies: {undeclared}"


@pytest.mark.timeout(INSTALL_TIMEOUT + 2 * RUN_TIMEOUT)
def test_the_wheel_runs_with_only_its_runtime_dependencies(tmp_path: Path) -> None:
    # From a copy of what the image builds from (.containerignore): setuptools would otherwise also
    # pack whatever an earlier build left in build/lib, such as a module since renamed.
    source = tmp_path / "source"
    shutil.copytree(PACKAGE, source / PACKAGE.name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy2(ROOT / name, source / name)
    wheels = tmp_path / "wheels"
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--wheel-dir", str(wheels), str(source)],
        check=True,
        timeout=INSTALL_TIMEOUT,
        capture_output=True,
        text=True,
    )
    # setuptools' deprecation notices (a license table, say) arrive as warnings from the backend.
    assert "warning" not in (built.stdout + built.stderr).lower(), built.stdout + built.stderr
    (wheel,) = wheels.glob("secrets_store_csi_provider_aws-*.whl")
    with zipfile.ZipFile(wheel) as archive:
        dist_info = f"{wheel.name.split('-')[0]}-{wheel.name.split('-')[1]}.dist-info"
        assert archive.read(f"{dist_info}/licenses/LICENSE") == (ROOT / "LICENSE").read_bytes()
        metadata = archive.read(f"{dist_info}/METADATA").decode()
    assert "License-Expression: Apache-2.0\n" in metadata and "License-File: LICENSE\n" in metadata
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, clear=True).create(env_dir)
    python = env_dir / "bin" / "python"
    installed_wheel = subprocess.run(
        [str(python), "-m", "pip", "install", "--disable-pip-version-check", str(wheel)],
        check=True,
        timeout=INSTALL_TIMEOUT,
        capture_output=True,
        text=True,
    )
    assert "warning" not in installed_wheel.stderr.lower(), installed_wheel.stderr
    installed = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=freeze"],
        check=True,
        timeout=RUN_TIMEOUT,
        capture_output=True,
        text=True,
    ).stdout.lower()
    for test_only in ("moto", "pytest", "hypothesis", "grpcio", "mypy", "betterproto"):
        assert f"\n{test_only}==" not in f"\n{installed}", f"{test_only} was installed with the wheel"
    # Every module of the installed package imports (catches a lazily imported test dependency).
    walk = (
        "import importlib, pkgutil, provider_aws\n"
        "for m in pkgutil.walk_packages(provider_aws.__path__, 'provider_aws.'):\n"
        "    if not m.name.endswith('__main__'):\n"
        "        importlib.import_module(m.name)\n"
    )
    subprocess.run([str(python), "-c", walk], check=True, timeout=RUN_TIMEOUT, cwd=tmp_path)
    helped = subprocess.run(
        [str(env_dir / "bin" / "provider-aws"), "serve", "--help"],
        check=True,
        timeout=RUN_TIMEOUT,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert "--socket-dir" in helped.stdout
    assert list(env_dir.glob("lib/python*/site-packages/provider_aws")) != []
    assert list(env_dir.glob("lib/python*/site-packages/demo")) == []  # the demo is not shipped
