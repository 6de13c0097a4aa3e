"""`provider-aws mount` against the real provider (build_provider's Mounter) on a socket, over moto."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from provider_aws.app import build_provider
from provider_aws.cli.drivermount import (
    DATA_DIR,
    DriverCheckError,
    MountOptions,
    SecretProviderClass,
    build_request,
    check_response,
    write_atomically,
)
from provider_aws.cli.main import main
from provider_aws.rpc.messages import File, MountResponse, ObjectVersion
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import running_provider
from testkit.leakscan import LeakScan
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

REGION = "eu-west-1"
SPC = """\
apiVersion: secrets-store.csi.x-k8s.io/{version}
kind: SecretProviderClass
metadata:
  name: app-secrets
spec:
  provider: aws
  parameters:
    region: {region}
    objects: |
      - objectName: app/db
        objectType: secretsmanager
        filePermission: "0600"
        jmesPath:
          - path: user.password
            objectAlias: dbpassword
      - objectName: {second}
        objectType: secretsmanager
        objectAlias: flag
"""


@pytest_asyncio.fixture
async def provider(aws: ProxyState, socket_dir: Path) -> AsyncIterator[Path]:
    """The real provider (composition root) serving on a socket; yields the socket path."""
    settings = Settings(socket_dir=socket_dir, shutdown_grace=5.0)
    async with build_provider(settings) as built, running_provider(settings, built.mounter):
        yield settings.socket_path


def _write_inputs(tmp_path: Path, *, version: str = "v1", second: str = "app/flag") -> list[str]:
    spc = tmp_path / "spc.yaml"
    spc.write_text(SPC.format(version=version, region=REGION, second=second))
    secrets = tmp_path / "secrets.yaml"
    secrets.write_text(f"awsAccessKeyId: {TEST_ACCESS_KEY}\nawsSecretAccessKey: {TEST_SECRET_KEY}\n")
    return ["--spc", str(spc), "--secrets-file", str(secrets)]


def _seed(moto_server: str) -> dict[str, str]:
    client = seed_client(moto_server, "secretsmanager", REGION)
    db = client.create_secret(Name="app/db", SecretString='{"user": {"password": "pw-1"}}')
    flag = client.create_secret(Name="app/flag", SecretString="on")
    return {"app_db": db["VersionId"], "flag": flag["VersionId"]}


async def _cli(*argv: str) -> int:
    return await asyncio.to_thread(main, list(argv))


@pytest.mark.asyncio
@pytest.mark.parametrize("version", ["v1", "v1alpha1"])
async def test_mount_writes_files_with_modes_and_prints_no_contents(
    *,
    aws: ProxyState,
    moto_server: str,
    provider: Path,
    tmp_path: Path,
    version: str,
    capsys: pytest.CaptureFixture[str],
    leak_scan: LeakScan,
) -> None:
    versions = _seed(moto_server)
    target = tmp_path / "mnt"
    code = await _cli("mount", *_write_inputs(tmp_path, version=version), "--socket", str(provider),
                      "--target", str(target), "--permission", "0640")  # fmt: skip
    out = capsys.readouterr()
    leak_scan.add_text("provider-aws mount: stderr", out.err)
    assert code == 0, out.err
    contents = {p.name: p.read_bytes() for p in target.iterdir() if not p.name.startswith("..")}
    assert contents == {"app_db": b'{"user": {"password": "pw-1"}}', "dbpassword": b"pw-1", "flag": b"on"}
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in target.iterdir() if not p.name.startswith("..")}
    assert modes == {"app_db": 0o600, "dbpassword": 0o600, "flag": 0o640}
    assert (target / "flag").is_symlink() and (target / DATA_DIR).is_symlink()
    assert versions["app_db"] in out.out and versions["flag"] in out.out
    assert "0600" in out.out and "0640" in out.out
    assert "pw-1" not in out.out + out.err and "on\n" not in out.out
    assert aws.count(service="secretsmanager") >= 1


@pytest.mark.asyncio
async def test_second_mount_swaps_atomically_and_drops_stale_files(
    aws: ProxyState, moto_server: str, provider: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _seed(moto_server)
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="app/other", SecretString="x")
    target = tmp_path / "mnt"
    first = await _cli("mount", *_write_inputs(tmp_path), "--socket", str(provider), "--target", str(target))
    old_data = os.readlink(target / DATA_DIR)
    second = await _cli(
        "mount",
        *_write_inputs(tmp_path, second="app/other"),
        "--socket",
        str(provider),
        "--target",
        str(target),
    )
    assert (first, second) == (0, 0), capsys.readouterr().err
    names = sorted(p.name for p in target.iterdir())
    new_data = os.readlink(target / DATA_DIR)
    assert new_data != old_data and not (target / old_data).exists()
    assert names == sorted([DATA_DIR, new_data, "app_db", "dbpassword", "flag"])
    assert (target / "flag").read_bytes() == b"x"


@pytest.mark.asyncio
async def test_provider_error_exits_non_zero_with_its_message_and_writes_nothing(
    *,
    aws: ProxyState,
    moto_server: str,
    provider: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    leak_scan: LeakScan,
) -> None:
    target = tmp_path / "mnt"
    code = await _cli("mount", *_write_inputs(tmp_path), "--socket", str(provider), "--target", str(target))
    err = capsys.readouterr().err
    leak_scan.add_text("provider-aws mount: stderr", err)
    assert code == 1
    # Neither secret exists; each is its own GetSecretValue (too few to batch), and the first
    # failure to arrive answers the Mount (run_all fails fast), so either may be named.
    assert "NOT_FOUND" in err and ("app/db" in err or "app/flag" in err)
    assert not target.exists() or not any(target.iterdir())


@pytest.mark.asyncio
async def test_no_provider_on_the_socket_is_a_clear_failure(
    socket_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = await _cli("mount", *_write_inputs(tmp_path), "--socket", str(socket_dir / "aws.sock"),
                      "--target", str(tmp_path / "mnt"), "--timeout", "5")  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    # (stderr may also hold what another test's server thread printed)
    assert f"provider-aws mount: cannot reach the provider at {socket_dir / 'aws.sock'}: " in err
    assert "no such socket" in err
    assert f"provider-aws serve --socket-dir {socket_dir}" in err and "--socket" in err


def test_a_socket_nobody_listens_on_is_named(
    socket_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    socket_dir.mkdir()
    stale = socket_dir / "aws.sock"
    with socket.socket(socket.AF_UNIX) as bound:
        bound.bind(str(stale))  # bound, never listening: what a killed provider leaves behind
        code = main(["mount", *_write_inputs(tmp_path), "--socket", str(stale),
                     "--target", str(tmp_path / "mnt"), "--timeout", "5"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"cannot reach the provider at {stale}: nothing listens there" in err


def test_a_directory_given_as_the_socket_gets_the_socket_path_to_pass(
    socket_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    socket_dir.mkdir()
    code = main(["mount", *_write_inputs(tmp_path), "--socket", str(socket_dir),
                 "--target", str(tmp_path / "mnt"), "--timeout", "5"])  # fmt: skip
    assert code == 1
    err = capsys.readouterr().err
    assert f"{socket_dir} is a directory, not the provider's socket: " in err
    assert f"pass --socket {socket_dir}/aws.sock" in err


def test_request_is_built_as_the_driver_builds_it(tmp_path: Path) -> None:
    spc = SecretProviderClass("aws-secrets", {"objects": "- objectName: a", "region": REGION})
    options = MountOptions(
        target=tmp_path, namespace="shop", pod="web-0", pod_uid="uid-1", service_account="web",
        sts_token="header.eyJleHAiOjE3MDAwMDAwMDB9.sig", pod_identity_token="pi-token", permission=0o644,
    )  # fmt: skip
    request = build_request(spc, options)
    attributes = json.loads(request.attributes)
    tokens = json.loads(attributes.pop("csi.storage.k8s.io/serviceAccount.tokens"))
    assert attributes == {
        "objects": "- objectName: a",
        "region": REGION,
        "secretProviderClass": "aws-secrets",
        "csi.storage.k8s.io/pod.name": "web-0",
        "csi.storage.k8s.io/pod.namespace": "shop",
        "csi.storage.k8s.io/pod.uid": "uid-1",
        "csi.storage.k8s.io/serviceAccount.name": "web",
        "csi.storage.k8s.io/ephemeral": "true",
    }
    assert tokens["sts.amazonaws.com"] == {
        "token": "header.eyJleHAiOjE3MDAwMDAwMDB9.sig",
        "expirationTimestamp": "2023-11-14T22:13:20Z",
    }
    assert tokens["pods.eks.amazonaws.com"]["token"] == "pi-token"
    assert (request.secrets, request.permission, request.target_path) == ("null", "420", str(tmp_path))


@pytest.mark.parametrize(
    ("files", "versions", "problem"),
    [
        ([File(path="a", mode=0o644)], [], "missing object versions"),
        ([File(path="/etc/a", mode=0o644)], [ObjectVersion(id="a", version="1")], "absolute"),
        ([File(path="..a", mode=0o644)], [ObjectVersion(id="a", version="1")], "starts with '..'"),
        ([File(path="x/../../a", mode=0o644)], [ObjectVersion(id="a", version="1")], "'..' element"),
        ([File(path="a\x00b", mode=0o644)], [ObjectVersion(id="a", version="1")], "control character"),
        ([File(path="a//b", mode=0o644)], [ObjectVersion(id="a", version="1")], "empty or '.' path element"),
        ([File(path="a", mode=0o1000)], [ObjectVersion(id="a", version="1")], "outside 0..511"),
    ],
)
def test_driver_checks_reject_bad_answers(
    files: list[File], versions: list[ObjectVersion], problem: str
) -> None:
    with pytest.raises(DriverCheckError, match=problem):
        check_response(MountResponse(object_version=versions, files=files))


def test_atomic_writer_creates_subdirectories_through_the_data_link(tmp_path: Path) -> None:
    write_atomically(tmp_path, [File(path="dir/a", mode=0o400, contents=b"1")])
    assert (tmp_path / "dir").is_symlink()
    assert (tmp_path / "dir" / "a").read_bytes() == b"1"
    assert stat.S_IMODE((tmp_path / "dir" / "a").stat().st_mode) == 0o400


def test_driver_checks_reject_an_answer_with_an_error_code() -> None:
    answer = MountResponse(object_version=[ObjectVersion(id="a", version="1")], error={"code": "Throttled"})
    with pytest.raises(DriverCheckError, match="error code Throttled"):
        check_response(answer)
