"""`provider-aws validate`: every problem with its file, document and name; exit codes for CI."""

from __future__ import annotations

from pathlib import Path

import pytest

from provider_aws.cli.drivermount import DriverCheckError, load_spc
from provider_aws.cli.main import main

GOOD = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: good
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: "MySecret"
        objectType: "secretsmanager"
"""
BAD_OBJECTS = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: bad-objects
spec:
  provider: aws
  parameters:
    region: not a region
    objects: |
      - objectName: "a"
        objectType: "vault"
"""
BAD_MANIFEST = """\
apiVersion: secrets-store.csi.x-k8s.io/v2beta9
kind: SecretProviderClass
metadata:
  name: bad-manifest
spec:
  provider: aws
  parameters:
    usePodIdentity: true
"""
OTHER_PROVIDER = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: vault-one
spec:
  provider: vault
"""
NOT_AN_SPC = """\
apiVersion: v1
kind: ConfigMap
metadata:
  name: unrelated
"""


def write(tmp_path: Path, name: str, *documents: str) -> Path:
    path = tmp_path / name
    path.write_text("---\n".join(documents))
    return path


def test_valid_manifests_exit_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write(tmp_path, "spc.yaml", GOOD, NOT_AN_SPC)
    assert main(["validate", str(path)]) == 0
    assert "1 SecretProviderClass(es) valid" in capsys.readouterr().out


def test_every_problem_is_listed_with_its_file_and_name(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    first = write(tmp_path, "one.yaml", GOOD, BAD_OBJECTS)
    second = write(tmp_path, "two.yaml", BAD_MANIFEST, OTHER_PROVIDER)
    assert main(["validate", str(first), str(second)]) == 1
    lines = capsys.readouterr().out.splitlines()
    objects = [line for line in lines if "SecretProviderClass bad-objects" in line]
    assert any("not a region" in line for line in objects)
    assert any("vault" in line for line in objects)
    assert all(line.startswith(f"{first}: ") for line in objects)
    manifest = [line for line in lines if "SecretProviderClass bad-manifest" in line]
    assert any("apiVersion must be one of" in line for line in manifest)
    assert any("map names to strings" in line for line in manifest)
    assert any(
        "SecretProviderClass vault-one: spec.provider is 'vault', not \"aws\"" in line for line in lines
    )
    assert not any("SecretProviderClass good" in line for line in lines)


@pytest.mark.parametrize(
    ("documents", "arguments"),
    [((NOT_AN_SPC,), ()), ((GOOD,), ("--permission", "rw-r--r--"))],
    ids=["no SecretProviderClass", "permission not octal"],
)
def test_nothing_to_check_or_bad_flags_exit_2(
    tmp_path: Path, documents: tuple[str, ...], arguments: tuple[str, ...]
) -> None:
    assert main(["validate", str(write(tmp_path, "spc.yaml", *documents)), *arguments]) == 2


def test_the_permission_flag_is_the_default_mode_checked(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write(tmp_path, "spc.yaml", GOOD)
    assert main(["validate", str(path), "--permission", "0640"]) == 0
    assert main(["validate", str(path), "--permission", "9"]) == 2


@pytest.mark.parametrize("document", [BAD_MANIFEST, OTHER_PROVIDER])
def test_mount_refuses_what_validate_refuses(tmp_path: Path, document: str) -> None:
    path = write(tmp_path, "spc.yaml", document)
    assert main(["validate", str(path)]) == 1
    with pytest.raises(DriverCheckError):
        load_spc(path)
