"""Regenerate `provider_aws/_proto` from the .proto files under `protos/`.

Writes the betterproto code and `service.binpb`, a FileDescriptorSet that the
server loads for gRPC reflection (betterproto registers nothing with the
protobuf runtime, so reflection needs the descriptors from somewhere).
`make proto` runs this; `tests/rpc/test_proto.py` runs it into a temporary
directory and compares the result with the committed files.
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


def _plugin() -> Path:
    found = Path(sys.executable).with_name(PLUGIN)
    if found.exists():
        return found
    located = shutil.which(PLUGIN)
    if located is None:
        raise SystemExit(f"{PLUGIN} not found next to {sys.executable} or on PATH; run `make install`")
    return Path(located)


# The package's docstring (the README's architecture diagram reads it); protoc leaves it empty.
PACKAGE_DOC = (
    '"""Generated from protos/ by `make proto`: the driver\'s v1alpha1 service as betterproto classes, '
    'and its descriptor set"""\n'
)


def generate(out: Path) -> None:
    """Replace `out` with freshly generated code and descriptor set."""
    sources = sorted(str(path) for path in PROTO_ROOT.rglob("*.proto"))
    with tempfile.TemporaryDirectory() as scratch:
        staged = Path(scratch) / "out"
        staged.mkdir()
        args = [
            "grpc_tools.protoc",
            f"--proto_path={PROTO_ROOT}",
            f"--plugin={PLUGIN}={_plugin()}",
            f"--python_betterproto_out={staged}",
            f"--descriptor_set_out={staged / DESCRIPTOR_SET}",
            *sources,
        ]
        if protoc.main(args) != 0:
            raise SystemExit("protoc failed; see the messages above")
        (staged / "__init__.py").write_text(PACKAGE_DOC)
        if out.exists():
            shutil.rmtree(out)
        shutil.copytree(staged, out)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: generate.py OUT_DIR")
    generate(Path(sys.argv[1]))
