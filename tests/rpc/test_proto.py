"""Committed `provider_aws/_proto` and `testkit/betterproto_api` are what `protos/` generates, and the
descriptor set matches the driver's wire format."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from provider_aws.rpc.messages import load_descriptor_set

ROOT = Path(__file__).resolve().parents[2]
COMMITTED = (ROOT / "provider_aws" / "_proto", ROOT / "testkit" / "betterproto_api")
F = descriptor_pb2.FieldDescriptorProto


def _files(root: Path) -> Iterator[tuple[str, bytes]]:
    for path in sorted(root.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts:
            yield path.relative_to(root).as_posix(), path.read_bytes()


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    scratch = tmp_path_factory.mktemp("proto")
    outs = (scratch / "package", scratch / "oracle")
    subprocess.run(
        [sys.executable, str(ROOT / "protos" / "generate.py"), *map(str, outs)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return outs


@pytest.mark.parametrize("which", [0, 1], ids=["descriptor set", "betterproto oracle"])
def test_committed_generated_files_are_up_to_date(regenerated: tuple[Path, Path], which: int) -> None:
    fresh = dict(_files(regenerated[which]))
    committed = dict(_files(COMMITTED[which]))
    assert sorted(committed) == sorted(fresh), f"run `make proto` and commit {COMMITTED[which]}"
    stale = [name for name in fresh if fresh[name] != committed[name]]
    assert not stale, f"stale generated files {stale}: run `make proto` and commit them"


# (message, field, number, type, repeated, message type) as in the driver's provider/v1alpha1/service.proto.
WIRE = [
    ("VersionRequest", "version", 1, F.TYPE_STRING, False, ""),
    ("VersionResponse", "version", 1, F.TYPE_STRING, False, ""),
    ("VersionResponse", "runtime_name", 2, F.TYPE_STRING, False, ""),
    ("VersionResponse", "runtime_version", 3, F.TYPE_STRING, False, ""),
    ("MountRequest", "attributes", 1, F.TYPE_STRING, False, ""),
    ("MountRequest", "secrets", 2, F.TYPE_STRING, False, ""),
    ("MountRequest", "target_path", 3, F.TYPE_STRING, False, ""),
    ("MountRequest", "permission", 4, F.TYPE_STRING, False, ""),
    ("MountRequest", "current_object_version", 5, F.TYPE_MESSAGE, True, ".v1alpha1.ObjectVersion"),
    ("MountResponse", "object_version", 1, F.TYPE_MESSAGE, True, ".v1alpha1.ObjectVersion"),
    ("MountResponse", "error", 2, F.TYPE_MESSAGE, False, ".v1alpha1.Error"),
    ("MountResponse", "files", 3, F.TYPE_MESSAGE, True, ".v1alpha1.File"),
    ("File", "path", 1, F.TYPE_STRING, False, ""),
    ("File", "mode", 2, F.TYPE_INT32, False, ""),
    ("File", "contents", 3, F.TYPE_BYTES, False, ""),
    ("ObjectVersion", "id", 1, F.TYPE_STRING, False, ""),
    ("ObjectVersion", "version", 2, F.TYPE_STRING, False, ""),
    ("Error", "code", 1, F.TYPE_STRING, False, ""),
]


def test_descriptor_matches_the_driver_wire_format() -> None:
    [file] = load_descriptor_set().file
    assert (file.name, file.package, file.syntax) == ("v1alpha1/service.proto", "v1alpha1", "proto3")
    [service] = file.service
    assert service.name == "CSIDriverProvider"
    assert [(m.name, m.input_type, m.output_type) for m in service.method] == [
        ("Version", ".v1alpha1.VersionRequest", ".v1alpha1.VersionResponse"),
        ("Mount", ".v1alpha1.MountRequest", ".v1alpha1.MountResponse"),
    ]
    actual = [
        (message.name, f.name, f.number, f.type, f.label == F.LABEL_REPEATED, f.type_name)
        for message in file.message_type
        for f in message.field
    ]
    assert sorted(actual) == sorted(WIRE)
