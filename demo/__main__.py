"""`make demo`: the seed's SecretProviderClass mounted through a real provider socket, against moto.

moto's server runs on 127.0.0.1 (a free port) and holds the seed document's two secrets; `provider-aws
serve` runs as a child process on a temporary socket with `AWS_ENDPOINT_URL` pointing at moto; the seed's
SecretProviderClass (v1, with the ARNs moto gave the secrets) is mounted the way the driver does it, with
static credentials from a nodePublishSecretRef-style secrets file. The files are printed — contents
included, because these secrets are fake — and everything is stopped and removed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import botocore.session
from moto.server import ThreadedMotoServer

from provider_aws.cli.drivermount import MountOptions, format_table, mount_once
from provider_aws.ops.health import check_socket

__all__ = ["main", "run_demo"]

REGION = "eu-west-1"
ACCESS_KEY = "AKIDDEMODEMODEMO"
SECRET_KEY = "demo-secret-access-key"
MY_SECRET = {"user": {"username": "john.doe", "password": "123456"}}
MY_SECRET2 = "the value of MySecret2"
STARTUP_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0

SPC = """\
apiVersion: secrets-store.csi.x-k8s.io/v1
kind: SecretProviderClass
metadata:
  name: aws-secrets
spec:
  provider: aws
  parameters:
    objects: |
      - objectName: "{my_secret}"
        jmesPath:
          - path: user.username
            objectAlias: dbusername
          - path: user.password
            objectAlias: dbpassword
      - objectName: "{my_secret2}"
        objectAlias: foobar
"""


def _seed(endpoint: str) -> tuple[str, str]:
    client = botocore.session.get_session().create_client(
        "secretsmanager",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )
    first = client.create_secret(Name="MySecret", SecretString=json.dumps(MY_SECRET))
    second = client.create_secret(Name="MySecret2", SecretString=MY_SECRET2)
    return str(first["ARN"]), str(second["ARN"])


def _serve_env(endpoint: str) -> dict[str, str]:
    # Nothing of the caller's AWS or provider set-up (PROVIDER_SOCKET_DIR, ...) reaches the demo.
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "PROVIDER_"))}
    env.update(
        AWS_ENDPOINT_URL=endpoint,
        AWS_REGION=REGION,
        AWS_CONFIG_FILE=os.devnull,
        AWS_SHARED_CREDENTIALS_FILE=os.devnull,
        AWS_EC2_METADATA_DISABLED="true",
        PROVIDER_HTTP_ADDR="",
    )
    env.pop("KUBECONFIG", None)
    return env


async def _wait_ready(socket_path: Path, process: subprocess.Popen[bytes]) -> None:
    """Until the socket answers SERVING; fails if the child exits or the bound passes."""
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"provider-aws serve exited with status {process.returncode}")
        if (await check_socket(socket_path, 2.0)).serving:
            return
        await asyncio.sleep(0.1)
    raise RuntimeError(f"provider-aws serve did not answer within {STARTUP_TIMEOUT:.0f} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)


def run_demo(target: Path | None = None) -> int:
    """The whole demo; writes into `target` (kept) or a temporary directory (removed)."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    started = time.monotonic()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    try:
        host, port = moto.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        my_secret, my_secret2 = _seed(endpoint)
        print(f"moto on {endpoint}: created MySecret and MySecret2 in {REGION}")
        with tempfile.TemporaryDirectory(prefix="pa-demo-", dir="/tmp") as work_name:
            work = Path(work_name)
            spc = work / "secretproviderclass.yaml"
            spc.write_text(SPC.format(my_secret=my_secret, my_secret2=my_secret2), encoding="utf-8")
            secrets = {"awsAccessKeyId": ACCESS_KEY, "awsSecretAccessKey": SECRET_KEY}
            socket_dir = work / "sock"
            log_path = work / "serve.log"
            with log_path.open("wb") as log:
                process = subprocess.Popen(
                    [sys.executable, "-m", "provider_aws", "serve", "--socket-dir", str(socket_dir)],
                    env=_serve_env(endpoint),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            try:
                socket_path = socket_dir / "aws.sock"
                asyncio.run(_wait_ready(socket_path, process))
                print(f"provider-aws serve (pid {process.pid}) listening on {socket_path}")
                print(f"mounting SecretProviderClass aws-secrets from {spc.name} as the driver would:\n")
                options = MountOptions(
                    target=(target or work / "mount").absolute(),
                    namespace="default",
                    pod="demo",
                    service_account="default",
                    secrets=secrets,
                )
                files, versions = asyncio.run(mount_once(spc, options, socket_path))
                print(format_table(files, versions, contents=True))
            except BaseException:
                print(log_path.read_text(encoding="utf-8", errors="replace")[-4000:], file=sys.stderr)
                raise
            finally:
                _stop(process)
            if process.returncode != 0:
                print(f"provider-aws serve exited with status {process.returncode}", file=sys.stderr)
                return 1
    finally:
        moto.stop()
    print(f"\nstopped the provider and moto; done in {time.monotonic() - started:.1f} s")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m demo", description=__doc__)
    parser.add_argument("--target", type=Path, help="write the files here and keep them (default: temporary)")
    args = parser.parse_args(argv)
    try:
        return run_demo(args.target)
    except Exception as error:
        print(f"demo failed: {type(error).__name__}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    raise SystemExit(main())
