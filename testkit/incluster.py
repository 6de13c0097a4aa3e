"""`provider-aws serve` with the in-cluster configuration a pod has, on a real API server.

A pod's container finds its API server through KUBERNETES_SERVICE_HOST/PORT and its ServiceAccount
through /var/run/secrets/kubernetes.io/serviceaccount/{token,ca.crt,namespace}. The provider runs
here as root in a private mount namespace (`unshare -m`) with a tmpfs over /run holding exactly those
three files, so lightkube's in-cluster path is the one taken (no kubeconfig, no seam in the provider);
the host's /run is untouched.

`container_command()` turns the provider container of a rendered DaemonSet (the chart's or the
installer manifest's) into that command line and environment: its args and env as rendered, with
the socket directory and HTTP address moved to the test's and NODE_NAME resolved as the downward API
resolves it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from testkit.cluster import Cluster
from testkit.serveproc import ServeProcess, serve_env, wait_ready

__all__ = ["container_command", "in_cluster_provider"]

ACCOUNT_DIR = "/run/secrets/kubernetes.io/serviceaccount"
# Runs inside the new mount namespace: $1 is the directory holding token, ca.crt and namespace.
_SETUP = (
    "set -e; mount -t tmpfs -o size=1m,mode=0755 provider-aws-e2e /run; "
    f'mkdir -p {ACCOUNT_DIR}; cp "$1"/token "$1"/ca.crt "$1"/namespace {ACCOUNT_DIR}/; '
    'shift; exec "$@"'
)


def container_command(
    daemonset: Mapping[str, Any], socket_dir: Path, node: str
) -> tuple[list[str], dict[str, str]]:
    """(serve's args, the env the pod would have) of the DaemonSet's provider container."""
    (container,) = [
        c for c in daemonset["spec"]["template"]["spec"]["containers"] if c["name"] == "provider-aws"
    ]
    moved = {"--socket-dir": f"--socket-dir={socket_dir}", "--provider-volume": f"--socket-dir={socket_dir}"}
    moved["--http-addr"] = "--http-addr=127.0.0.1:0"
    args = [moved.get(arg.split("=", 1)[0], arg) for arg in container.get("args", [])]
    env = {}
    for entry in container.get("env", []):
        if "value" in entry:
            env[entry["name"]] = str(entry["value"])
        elif entry.get("valueFrom", {}).get("fieldRef", {}).get("fieldPath") == "spec.nodeName":
            env[entry["name"]] = node
        else:
            raise AssertionError(f"env {entry['name']}: no stand-in for {entry}")
    return args, env


@asynccontextmanager
async def in_cluster_provider(
    cluster: Cluster,
    token: str,
    namespace: str,
    *,
    args: list[str],
    env: Mapping[str, str],
    workdir: Path,
    socket_dir: Path,
) -> AsyncIterator[ServeProcess]:
    """A ready provider running as the ServiceAccount whose `token` it is; killed by PID on exit."""
    account = workdir / "serviceaccount"
    account.mkdir(mode=0o700)
    (account / "token").write_text(token)
    (account / "ca.crt").write_bytes(cluster.ca_file.read_bytes())
    (account / "namespace").write_text(namespace)
    environment = {
        **serve_env(),
        **env,
        "KUBERNETES_SERVICE_HOST": cluster.host,
        "KUBERNETES_SERVICE_PORT": str(cluster.port),
    }
    command = ["unshare", "--mount", "--propagation", "private", "sh", "-c", _SETUP, "sh", str(account)]
    log_path = workdir / "provider.log"
    with log_path.open("ab") as log:
        process = await asyncio.create_subprocess_exec(
            *command,
            sys.executable,
            "-m",
            "provider_aws",
            "serve",
            *args,
            env=environment,
            stdout=log,
            stderr=asyncio.subprocess.STDOUT,
        )
    child = ServeProcess(process, socket_dir / "aws.sock", log_path)
    try:
        await wait_ready(child)
        yield child
    finally:
        await child.kill()
