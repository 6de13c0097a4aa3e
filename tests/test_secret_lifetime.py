"""A secret value lives no longer than the last call that could reuse it, freed by reference counts alone.

moto runs in a process of its own and the provider talks to it directly, so the only objects of this
process that can hold a value are the provider's (and the leak scan's register of values, left out).
The garbage collector is off for the whole test: an answer caught in a reference cycle would stay in
`gc.get_objects()` and be found, as it was when every shared answer had a timer of its own.
"""

from __future__ import annotations

import asyncio
import gc
import json
import time
import uuid
from collections.abc import Iterator

import boto3  # type: ignore[import-untyped]
import pytest

from provider_aws.app import build_provider
from provider_aws.model import MountInput, MountResult
from provider_aws.settings import Settings
from testkit.leakscan import LeakScan
from testkit.motoproc import moto_process
from testkit.requests import REGION, STATIC, pod_attributes

WINDOW = 0.3
# The window, plus room for a loaded machine to run the loop's timers.
WAIT_BOUND = WINDOW + 5.0
OBJECTS = (
    "- objectName: app/lifetime\n  objectType: secretsmanager\n"
    "- objectName: /app/lifetime\n  objectType: ssmparameter\n"
)


@pytest.fixture(scope="module")
def moto_url() -> Iterator[str]:
    with moto_process() as (host, port):
        yield f"http://{host}:{port}"


def _holds(obj: object, marker: str, needle: bytes, depth: int = 0) -> bool:
    for ref in gc.get_referents(obj):
        if ref is marker or ref is needle:
            continue
        if isinstance(ref, str):
            if marker in ref:
                return True
        elif isinstance(ref, bytes | bytearray | memoryview):
            if needle in bytes(ref):
                return True
        elif depth < 8 and not gc.is_tracked(ref) and _holds(ref, marker, needle, depth + 1):
            return True
    return False


def holders(marker: str) -> list[str]:
    """Type names of the objects that refer to a string or bytes containing `marker` (the leak
    scan's register excepted); unreachable objects count, as the collector is off.

    CPython does not track containers of atomic values only (a dict of strings), so those are
    searched through the tracked objects that refer to them. Nothing here makes a cycle: with the
    collector off, the scan's own garbage would be found by the next scan."""
    needle = marker.encode()
    return [
        type(obj).__name__
        for obj in gc.get_objects()
        if _holds(obj, marker, needle) and not any(isinstance(r, LeakScan) for r in gc.get_referrers(obj))
    ]


def request(current: MountResult | None = None) -> MountInput:
    return MountInput(
        attributes=pod_attributes(OBJECTS),
        secrets=STATIC,
        target_path="/var/lib/kubelet/pods/uid-web-0/volumes/kubernetes.io~csi/secrets/mount",
        permission="420",
        current_versions=() if current is None else tuple((v.id, v.version) for v in current.versions),
    )


async def until_released(marker: str) -> list[str]:
    deadline = time.monotonic() + WAIT_BOUND

    while (held := holders(marker)) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    return held


@pytest.mark.asyncio
async def test_a_secret_value_is_released_once_no_poll_can_reuse_it(
    moto_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"lifetime-{uuid.uuid4().hex}"
    for service in ("secretsmanager", "ssm"):
        client = boto3.client(
            service,
            region_name=REGION,
            endpoint_url=moto_url,
            aws_access_key_id="AKIDX",
            aws_secret_access_key="x",
        )
        if service == "ssm":
            client.put_parameter(Name="/app/lifetime", Value=f"p-{marker}", Type="SecureString")
        else:
            client.create_secret(Name="app/lifetime", SecretString=json.dumps({"v": marker}))
        client.close()
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_url)
    # Only the shared answers are under test: the value cache keeps values on purpose.
    settings = Settings(coalesce_window=WINDOW, value_cache_bytes=0, aws_max_attempts=1)
    gc.collect()
    gc.disable()
    try:
        assert holders(marker) == []
        async with build_provider(settings) as built:
            first = await built.mounter.mount(request())
            assert {f.path: f.contents.reveal() for f in first.files}["app_lifetime"] == json.dumps(
                {"v": marker}
            ).encode()
            versions = MountResult(files=(), versions=first.versions)
            del first
            # A first Mount is no poll: nothing of its answers is kept for reuse.
            assert await until_released(marker) == []
            polled = await built.mounter.mount(request(versions))
            del polled
            # A poll's answers are kept for the pods polling with it: the scan sees them...
            assert holders(marker) != []
            # ...until the window ends, when the loop drops them without a collection.
            assert await until_released(marker) == []
            assert built.rotation_stats.polls == 1
    finally:
        gc.enable()
