"""Regenerate the driver's v1alpha1 API from the .proto files under `protos/`.

Writes two directories:
- the package's `provider_aws/_proto`: `service.binpb`, a FileDescriptorSet from which
  `provider_aws/rpc/messages.py` builds the protobuf-runtime classes the provider serves and calls with,
  and reflection describes the service;
- the test kit's `testkit/betterproto_api`: the same API as betterproto classes, a second, pure-Python
  codec that tests use as an independent client and as the oracle of the provider's wire bytes.

`make proto` runs this; `tests/rpc/test_proto.py` runs it into temporary directories and compares the
result with the committed files.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from grpc_tools import protoc

__all__ = ["DESCRIPTOR_SET", "PROTO_ROOT", "generate"]

PROTO_ROOT = Path(__file__).resolve().parent
DESCRIPTOR_SET = "service.binpb"
PLUGIN = "protoc-gen-python_betterproto"

# The packages' docstrings (the README's architecture diagram reads the first); protoc writes none.
PACKAGE_DOC = (
    '"""Generated from protos/ by `make proto`: the descriptor set of the driver\'s v1alpha1 API"""\n'
)
ORACLE_DOC = (
    '"""Generated from protos/ by `make proto`: the driver\'s v1alpha1 API as betterproto classes, '
    'for tests only"""\n'
)


def _plugin() -> Path:
    found = Path(sys.executable).with_name(PLUGIN)
    if found.exists():
        return found
    located = shutil.which(PLUGIN)
    if located is None:
        raise SystemExit(f"{PLUGIN} not found next to {sys.executable} or on PATH; run `make install`")
    return Path(located)


def _replace(out: Path, staged: Path) -> None:
    if out.exists():
        shutil.rmtree(out)
    shutil.copytree(staged, out)


def generate(package_out: Path, oracle_out: Path) -> None:
    """Replace `package_out` with the descriptor set and `oracle_out` with the betterproto code."""
    sources = sorted(str(path) for path in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as scratch:
        package, oracle = Path(scratch) / "package", Path(scratch) / "oracle"
        package.mkdir()
        oracle.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--plugin={PLUGIN}={_plugin()}",
            f"--python_betterproto_out={oracle}",
            f"--descriptor_set_out={package / DESCRIPTOR_SET}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed; see the messages above")
        (package / "__init__.py").write_text(PACKAGE_DOC)
        (oracle / "__init__.py").write_text(ORACLE_DOC)
        _replace(package_out, package)
        _replace(oracle_out, oracle)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: generate.py PACKAGE_OUT_DIR BETTERPROTO_OUT_DIR")
    generate(Path(sys.argv[1]), Path(sys.argv[2]))
