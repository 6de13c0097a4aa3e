"""Rotation polls through build_provider's Mounter, against moto's server behind the counting proxy.

Requests carry static credentials in `secrets` and name their region, so no Kubernetes is needed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from provider_aws.app import Provider, build_provider
from provider_aws.aws.rotation import ValueCache, ValueKey
from provider_aws.aws.tally import tally_requests
from provider_aws.errors import AccessDeniedError
from provider_aws.model import MountInput, MountResult, SecretBytes
from provider_aws.settings import Settings
from testkit.awsproxy import Fault, ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.requests import REGION, pod_attributes
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

VALUE_OPERATIONS = ("GetSecretValue", "BatchGetSecretValue")


def request(
    objects: str,
    *,
    pod: str = "web-0",
    key: str = TEST_ACCESS_KEY,
    current: MountResult | None = None,
) -> MountInput:
    versions = () if current is None else tuple((v.id, v.version) for v in current.versions)
    return MountInput(
        attributes=pod_attributes(objects, pod=pod),
        secrets=json.dumps({"awsAccessKeyId": key, "awsSecretAccessKey": TEST_SECRET_KEY}),
        target_path=f"/var/lib/kubelet/pods/uid-{pod}/volumes/kubernetes.io~csi/secrets/mount",
        permission="420",
        current_versions=versions,
    )


@asynccontextmanager
async def provider(window: float = 5.0, **settings: Any) -> AsyncIterator[Provider]:
    async with build_provider(
        # batch_min_secrets=2: these Mounts of two or three secrets count on one batch
        Settings(coalesce_window=window, aws_max_attempts=2, batch_min_secrets=2, **settings)
    ) as built:
        yield built


def files(result: MountResult) -> dict[str, bytes]:
    return {f.path: f.contents.reveal() for f in result.files}


def versions(result: MountResult) -> dict[str, str]:
    return {v.id: v.version for v in result.versions}


def value_calls(aws: ProxyState) -> int:
    return sum(aws.count(operation=op) for op in VALUE_OPERATIONS)


def secret_objects(*names: str, label: str | None = None, version: str | None = None) -> str:
    lines = []
    for name in names:
        lines.append(f"- objectName: {name}\n  objectType: secretsmanager\n")
        if label is not None:
            lines.append(f"  objectVersionLabel: {label}\n")
        if version is not None:
            lines.append(f"  objectVersion: {version}\n")
    return "".join(lines)


MIXED = (
    "- objectName: app/db\n"
    "  objectType: secretsmanager\n"
    "  jmesPath:\n"
    "    - path: password\n"
    "      objectAlias: db-password\n"
    "- objectName: app/api\n"
    "  objectType: secretsmanager\n"
    "  objectAlias: api\n"
    "- objectName: /app/flag\n"
    "  objectType: ssmparameter\n"
    "  objectAlias: flag\n"
)


def seed_mixed(moto_server: str) -> Any:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    sm.create_secret(Name="app/db", SecretString='{"password": "pw-1"}')
    sm.create_secret(Name="app/api", SecretString="key-1")
    seed_client(moto_server, "ssm", REGION).put_parameter(Name="/app/flag", Value="on", Type="String")
    return sm


@pytest.mark.asyncio
async def test_new_versions_are_noticed_and_mounted(aws: ProxyState, moto_server: str) -> None:
    sm = seed_mixed(moto_server)
    async with provider(window=0) as built:
        first = await built.mounter.mount(request(MIXED))
        put = sm.put_secret_value(SecretId="app/db", SecretString='{"password": "pw-2"}')
        seed_client(moto_server, "ssm", REGION).put_parameter(
            Name="/app/flag", Value="off", Type="String", Overwrite=True
        )
        polled = await built.mounter.mount(request(MIXED, current=first))
        stats = built.rotation_stats
    assert files(polled) == {
        "app_db": b'{"password": "pw-2"}',
        "db-password": b"pw-2",
        "api": b"key-1",
        "flag": b"off",
    }
    assert versions(polled)["app_db"] == versions(polled)["db-password"] == put["VersionId"]
    assert versions(polled)["api"] == versions(first)["api"]
    assert versions(polled)["flag"] == "2"
    # app/api came from memory; only the changed secret was fetched again
    assert aws.count(operation="GetSecretValue") == 1
    assert (stats.checks, stats.changed, stats.value_cache_hits, stats.value_cache_misses) == (2, 1, 1, 1)


@pytest.mark.asyncio
async def test_unchanged_poll_is_identical_without_value_calls(aws: ProxyState, moto_server: str) -> None:
    seed_mixed(moto_server)
    async with provider(window=0) as built:
        first = await built.mounter.mount(request(MIXED))
        before = aws.operations()
        with tally_requests() as tally:
            polled = await built.mounter.mount(request(MIXED, current=first))
        stats = built.rotation_stats
    assert polled == first
    assert [f.mode for f in polled.files] == [f.mode for f in first.files]
    made = aws.operations() - before
    assert dict(made) == {"DescribeSecret": 2, "GetParameters": 1}
    assert tally.count == 3
    assert (stats.changed, stats.value_cache_hits, stats.value_cache_misses) == (0, 2, 0)


@pytest.mark.asyncio
async def test_pinned_version_makes_no_call(aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    pinned = sm.create_secret(Name="app/pinned", SecretString="old")["VersionId"]
    sm.put_secret_value(SecretId="app/pinned", SecretString="new")
    objects = secret_objects("app/pinned", version=pinned)
    async with provider() as built:
        first = await built.mounter.mount(request(objects))
        calls = len(aws.calls)
        with tally_requests() as tally:
            polled = await built.mounter.mount(request(objects, current=first))
    assert files(polled) == {"app_pinned": b"old"} == files(first)
    assert versions(polled) == {"app_pinned": pinned}
    assert len(aws.calls) == calls == 1
    assert tally.count == 0


@pytest.mark.asyncio
async def test_moved_label_is_followed(aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    v1 = sm.create_secret(Name="app/cfg", SecretString="one")["VersionId"]
    v2 = sm.put_secret_value(SecretId="app/cfg", SecretString="two")["VersionId"]
    # (labelled after the put: moto's put_secret_value drops custom labels)
    sm.update_secret_version_stage(SecretId="app/cfg", VersionStage="stable", MoveToVersionId=v1)
    objects = secret_objects("app/cfg", label="stable")
    async with provider(window=0) as built:
        first = await built.mounter.mount(request(objects))
        assert (files(first), versions(first)) == ({"app_cfg": b"one"}, {"app_cfg": v1})
        sm.update_secret_version_stage(
            SecretId="app/cfg", VersionStage="stable", MoveToVersionId=v2, RemoveFromVersionId=v1
        )
        moved = await built.mounter.mount(request(objects, current=first))
        assert (files(moved), versions(moved)) == ({"app_cfg": b"two"}, {"app_cfg": v2})
        assert aws.count(operation="GetSecretValue") == 2
        # moved back: v1 is still in memory, so no value is read
        sm.update_secret_version_stage(
            SecretId="app/cfg", VersionStage="stable", MoveToVersionId=v1, RemoveFromVersionId=v2
        )
        back = await built.mounter.mount(request(objects, current=moved))
        assert (files(back), versions(back)) == ({"app_cfg": b"one"}, {"app_cfg": v1})
        assert aws.count(operation="GetSecretValue") == 2
        assert aws.count(operation="DescribeSecret") == 2
        assert built.rotation_stats.changed == 2


@pytest.mark.asyncio
async def test_cache_miss_after_restart_fetches(aws: ProxyState, moto_server: str) -> None:
    seed_mixed(moto_server)
    async with provider() as built:
        first = await built.mounter.mount(request(MIXED))
    async with provider() as restarted:
        polled = await restarted.mounter.mount(request(MIXED, current=first))
        stats = restarted.rotation_stats
    assert polled == first
    assert (stats.value_cache_hits, stats.value_cache_misses) == (0, 2)
    # one batch at the first mount, one after the restart
    assert aws.count(operation="BatchGetSecretValue") == 2


@pytest.mark.asyncio
async def test_two_identities_never_share_a_value(aws: ProxyState, moto_server: str) -> None:
    seed_mixed(moto_server)
    key_a, key_b = "AKIDAAAAAAAAAAAAAAAA", "AKIDBBBBBBBBBBBBBBBB"
    async with provider() as built:
        first = await built.mounter.mount(request(MIXED, key=key_a))
        # Values may no longer be read; DescribeSecret still answers.
        for operation in VALUE_OPERATIONS:
            aws.faults[(REGION, operation)] = Fault(status=400, code="AccessDeniedException")
        again = await built.mounter.mount(request(MIXED, key=key_a, current=first))
        assert again == first
        with pytest.raises(AccessDeniedError):
            await built.mounter.mount(request(MIXED, pod="web-1", key=key_b, current=first))
        stats = built.rotation_stats
    # B checked for itself (its DescribeSecret calls were not A's) and found nothing in memory
    assert aws.count(operation="DescribeSecret") == 4
    assert stats.value_cache_hits == 2
    assert stats.value_cache_misses == 2


async def sweep(built: Provider, objects: str, pods: int, first: MountResult) -> list[MountResult]:
    return list(
        await asyncio.gather(
            *(built.mounter.mount(request(objects, pod=f"web-{i}", current=first)) for i in range(pods))
        )
    )


@pytest.mark.asyncio
@pytest.mark.parametrize(("window", "describes"), [(30.0, 10), (0.0, 500)])
async def test_sweep_of_50_pods_over_10_secrets(
    aws: ProxyState, moto_server: str, window: float, describes: int
) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    names = [f"app/s{i}" for i in range(10)]
    for name in names:
        sm.create_secret(Name=name, SecretString=f"value of {name}")
    objects = secret_objects(*names)
    async with provider(window=window) as built:
        mounted = [await built.mounter.mount(request(objects, pod=f"web-{i}")) for i in range(50)]
        # a new pod always gets a fresh read, whatever the window
        assert aws.count(operation="BatchGetSecretValue") == 50
        assert aws.count(operation="DescribeSecret") == 0
        polled = await sweep(built, objects, 50, mounted[0])
        stats = built.rotation_stats
        calls = built.call_stats
    assert all(result == mounted[0] for result in polled)
    assert aws.count(operation="DescribeSecret") == describes
    assert value_calls(aws) == 50
    assert calls.describes == describes
    assert calls.coalesced == 500 - describes
    assert (stats.checks, stats.value_cache_hits) == (500, 500)


@pytest.mark.asyncio
async def test_window_reuses_a_recent_poll_answer_but_never_on_a_first_mount(
    aws: ProxyState, moto_server: str
) -> None:
    seed_mixed(moto_server)
    async with provider(window=30.0) as built:
        first = await built.mounter.mount(request(MIXED))
        second = await built.mounter.mount(request(MIXED, pod="web-1"))
        assert aws.count(operation="GetParameters") == 2
        polls = [await built.mounter.mount(request(MIXED, pod=f"web-{i}", current=first)) for i in range(3)]
    assert all(result == first == second for result in polls)
    # nothing of the first mounts was kept (issue 13: no poll comes within the window of a new pod's
    # read often enough to pay for holding its values): the first poll read the parameter again and
    # checked each secret once, the other polls reused those answers
    assert aws.count(operation="GetParameters") == 3
    assert aws.count(operation="DescribeSecret") == 2


@pytest.mark.asyncio
async def test_describe_failures(aws: ProxyState, moto_server: str) -> None:
    seed_mixed(moto_server)
    async with provider(window=0) as built:
        first = await built.mounter.mount(request(MIXED))
        aws.faults[(REGION, "DescribeSecret")] = Fault(status=500, code="InternalServiceError")
        retried = await built.mounter.mount(request(MIXED, current=first))
        assert retried == first
        assert aws.count(operation="BatchGetSecretValue") == 2
        # A role allowed GetSecretValue but not DescribeSecret: the poll reads the values plainly.
        aws.faults[(REGION, "DescribeSecret")] = Fault(status=400, code="AccessDeniedException")
        assert await built.mounter.mount(request(MIXED, current=first)) == first
        aws.faults[(REGION, "*")] = Fault(status=400, code="AccessDeniedException")
        with pytest.raises(AccessDeniedError) as caught:
            await built.mounter.mount(request(MIXED, current=first))
    assert REGION in caught.value.message
    assert '"app/db"' in caught.value.message or '"app/api"' in caught.value.message


def _key(name: str, identity: str = "static:A") -> ValueKey:
    return ValueKey(identity, REGION, name, "v1")


def test_value_cache_is_bounded_in_bytes_oldest_first() -> None:
    entry = _key("a").cost() + 100
    cache = ValueCache(2 * entry, max_age=120.0)
    cache.put(_key("a"), SecretBytes(b"a" * 100))
    cache.put(_key("b"), SecretBytes(b"b" * 100))
    assert cache.get(_key("a")) == SecretBytes(b"a" * 100)
    cache.put(_key("c"), SecretBytes(b"c" * 100))
    assert cache.get(_key("a")) is None  # fetched first, so evicted first (and first to expire)
    assert cache.get(_key("b")) is not None and cache.get(_key("c")) is not None
    assert cache.size_bytes == 2 * entry
    cache.put(_key("huge"), SecretBytes(b"x" * (2 * entry)))
    assert cache.get(_key("huge")) is None and len(cache) == 2
    keeps_nothing = ValueCache(0, max_age=120.0)
    keeps_nothing.put(_key("a"), SecretBytes(b"a"))
    assert keeps_nothing.get(_key("a")) is None and len(keeps_nothing) == 0
    assert cache.get(_key("b", identity="static:B")) is None


def test_value_cache_keeps_a_value_no_longer_than_its_max_age() -> None:
    now = [1000.0]
    cache = ValueCache(1 << 20, max_age=120.0, clock=lambda: now[0])
    cache.put(_key("a"), SecretBytes(b"first"))
    now[0] += 60
    cache.put(_key("b"), SecretBytes(b"second"))
    now[0] += 59.9
    assert cache.get(_key("a")) == SecretBytes(b"first")
    now[0] += 0.1  # 120 s after AWS returned it
    assert cache.get(_key("a")) is None
    assert len(cache) == 1 and cache.size_bytes == _key("b").cost() + len(b"second")
    assert cache.expire() == 1000.0 + 60 + 120  # when the oldest left goes
    now[0] += 60
    assert len(cache) == 0 and cache.size_bytes == 0 and cache.expire() is None


def test_a_max_age_of_zero_turns_the_cache_off() -> None:
    cache = ValueCache(1 << 20, max_age=0.0)
    cache.put(_key("a"), SecretBytes(b"a"))
    assert cache.get(_key("a")) is None and len(cache) == 0 and not cache.keeps_values


@pytest.mark.asyncio
async def test_values_leave_memory_at_their_max_age_without_any_mount() -> None:
    cache = ValueCache(1 << 20, max_age=0.2)
    expiring = asyncio.create_task(cache.expire_continuously())
    try:
        cache.put(_key("a"), SecretBytes(b"a"))
        await asyncio.sleep(0.1)
        cache.put(_key("b"), SecretBytes(b"b"))
        await asyncio.sleep(0.15)  # a is past its age, b is not: only the sweep has looked
        assert [key.name for key in cache._entries] == ["b"]
        await asyncio.sleep(0.15)
        assert not cache._entries
    finally:
        expiring.cancel()
        await asyncio.wait_for(asyncio.gather(expiring, return_exceptions=True), 1.0)
    assert expiring.cancelled()
    # Without a cache there is nothing to sweep: the task ends at once.
    await asyncio.wait_for(ValueCache(0, max_age=120.0).expire_continuously(), 1.0)


@pytest.mark.asyncio
async def test_recent_answers_are_dropped_when_the_window_ends(aws: ProxyState, moto_server: str) -> None:
    seed_mixed(moto_server)
    async with provider(window=0.3) as built:
        first = await built.mounter.mount(request(MIXED))
        await built.mounter.mount(request(MIXED, current=first))
        shared = built.mounter.fetcher.shared
        assert shared is not None and shared.recent_answers > 0
        # the loop runs the (earlier) expiry timers before this sleep ends
        await asyncio.sleep(0.4)
        assert shared.recent_answers == 0
        reads = aws.count(operation="GetParameters")
        await built.mounter.mount(request(MIXED, current=first))
    # nothing reused after the window: the last poll checked again and re-read the parameter
    assert aws.count(operation="DescribeSecret") == 4
    assert aws.count(operation="GetParameters") == reads + 1
    assert built.rotation_stats.polls == 2


@pytest.mark.asyncio
async def test_checks_of_a_poll_run_concurrently(aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    names = [f"app/c{i}" for i in range(5)]
    for name in names:
        sm.create_secret(Name=name, SecretString=name)
    objects = secret_objects(*names)
    async with provider(window=0) as built:
        first = await built.mounter.mount(request(objects))
        aws.delay = 0.2
        polled = await built.mounter.mount(request(objects, current=first))
    assert polled == first
    describes = [c for c in aws.calls if c.operation == "DescribeSecret"]
    assert len(describes) == 5
    assert max(c.start for c in describes) < min(c.end for c in describes)


@pytest.mark.asyncio
async def test_poll_fails_over_when_the_primary_region_is_down(aws: ProxyState, moto_server: str) -> None:
    failover = "eu-central-1"
    for region in (REGION, failover):
        seed_client(moto_server, "secretsmanager", region).create_secret(Name="app/db", SecretString="pw")
    objects = "- objectName: app/db\n  objectType: secretsmanager\n"
    mount = request(objects)
    attributes = json.loads(mount.attributes)
    attributes["failoverRegion"] = failover
    async with provider(window=0) as built:
        first = await built.mounter.mount(
            MountInput(json.dumps(attributes), mount.secrets, mount.target_path, mount.permission)
        )
        aws.faults[(REGION, "*")] = Fault(status=503, code="ServiceUnavailable")
        polled = await built.mounter.mount(
            MountInput(
                json.dumps(attributes),
                mount.secrets,
                mount.target_path,
                mount.permission,
                tuple((v.id, v.version) for v in first.versions),
            )
        )
    assert files(polled) == {"app_db": b"pw"}
    assert [c.region for c in aws.calls if c.status == 200][-1] == failover


@pytest.mark.asyncio
async def test_poll_over_grpc(aws: ProxyState, moto_server: str) -> None:
    sm = seed_mixed(moto_server)
    first_request = request(MIXED)
    with short_socket_dir() as socket_dir:
        settings = Settings(
            socket_dir=socket_dir, shutdown_grace=5.0, coalesce_window=0.0, batch_min_secrets=2
        )
        async with build_provider(settings) as built, running_provider(settings, built.mounter):
            with GrpcioProviderClient(settings.socket_path) as client:

                def mount(current: tuple[tuple[str, str], ...] = ()) -> Any:
                    return client.mount(
                        attributes=first_request.attributes,
                        secrets=first_request.secrets,
                        current=current,
                    )

                first = await asyncio.to_thread(mount)
                mounted = tuple((v.id, v.version) for v in first.object_version)
                unchanged = await asyncio.to_thread(mount, mounted)
                reads = value_calls(aws)
                put = sm.put_secret_value(SecretId="app/api", SecretString="key-2")
                rotated = await asyncio.to_thread(mount, mounted)
    assert [(f.path, f.mode, f.contents) for f in unchanged.files] == [
        (f.path, f.mode, f.contents) for f in first.files
    ]
    assert reads == 1  # the first mount's batch only
    got = {f.path: f.contents for f in rotated.files}
    assert got["api"] == b"key-2" and got["db-password"] == b"pw-1"
    assert {v.id: v.version for v in rotated.object_version}["api"] == put["VersionId"]
    assert value_calls(aws) == 2
