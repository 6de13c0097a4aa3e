"""The fetch layer against moto's real server, through the counting, fault-injecting proxy."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field

import pytest
import pytest_asyncio
from aiobotocore.session import get_session

from provider_aws.aws.batchpolicy import SINGLE_ATTEMPT, BatchPolicy, BatchRules
from provider_aws.aws.clients import AwsClients
from provider_aws.aws.fetch import Fetcher
from provider_aws.aws.sharing import SharedCalls
from provider_aws.errors import AccessDeniedError, NotFoundError, PreconditionError, UnavailableError
from provider_aws.model import ObjectRef, ObjectSpec, ObjectType, SecretText
from provider_aws.settings import Settings
from testkit.awsproxy import Fault, ProxyState
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

PRIMARY = "eu-west-1"
FAILOVER = "eu-central-1"


@dataclass(frozen=True)
class StaticCreds:
    access_key_id: str = TEST_ACCESS_KEY
    secret_access_key: SecretText = field(default_factory=lambda: SecretText(TEST_SECRET_KEY))
    session_token: SecretText | None = None
    identity: str = "static:test"


def secret(
    name: str,
    *,
    version_id: str | None = None,
    label: str | None = None,
    alias: str | None = None,
    failover: ObjectRef | None = None,
) -> ObjectSpec:
    return ObjectSpec(
        ObjectType.SECRETS_MANAGER,
        ObjectRef(name, version_id, label),
        alias or name,
        0o644,
        alias,
        failover=failover,
    )


def parameter(
    name: str, *, version_id: str | None = None, label: str | None = None, alias: str | None = None
) -> ObjectSpec:
    return ObjectSpec(
        ObjectType.SSM_PARAMETER, ObjectRef(name, version_id, label), alias or name, 0o644, alias
    )


@pytest_asyncio.fixture
async def fetcher(aws: ProxyState) -> AsyncIterator[Fetcher]:
    clients = AwsClients(Settings(aws_max_attempts=2), get_session(), attempts=SINGLE_ATTEMPT)
    try:
        yield Fetcher(clients, BatchPolicy(BatchRules(min_secrets=2)), SharedCalls(0.0))
    finally:
        await clients.close()


async def creds(_region: str) -> StaticCreds:
    return StaticCreds()


def values(fetched: list) -> dict[str, tuple[bytes, str]]:
    return {item.spec.file_name: (item.value.reveal(), item.version) for item in fetched}


@pytest.mark.asyncio
async def test_45_secrets_take_three_overlapping_requests(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    ids = {}
    for i in range(45):
        ids[f"s{i}"] = sm.create_secret(Name=f"app/s{i}", SecretString=f"value-{i}")["VersionId"]
    aws.delay = 0.2
    specs = tuple(secret(f"app/s{i}", alias=f"s{i}") for i in range(45))
    fetched = await fetcher.fetch(specs, (PRIMARY,), creds)
    assert values(fetched) == {f"s{i}": (f"value-{i}".encode(), ids[f"s{i}"]) for i in range(45)}
    calls = [c for c in aws.calls if c.service == "secretsmanager"]
    assert [c.operation for c in calls] == ["BatchGetSecretValue"] * 3
    # all three were in flight at once: each started before any finished
    assert max(c.start for c in calls) < min(c.end for c in calls)


@pytest.mark.asyncio
async def test_pinned_versions_use_get_secret_value(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    first = sm.create_secret(Name="pinned", SecretString="one")["VersionId"]
    sm.put_secret_value(SecretId="pinned", SecretString="two", VersionStages=["AWSCURRENT"])
    specs = (
        secret("pinned", version_id=first, alias="old"),
        secret("pinned", alias="new"),
        secret("pinned", label="AWSPREVIOUS", alias="prev"),
    )
    got = values(await fetcher.fetch(specs, (PRIMARY,), creds))
    assert got["old"] == (b"one", first)
    assert got["prev"] == (b"one", first)
    assert got["new"][0] == b"two"
    assert aws.count(operation="GetSecretValue") == 3
    assert aws.count(operation="BatchGetSecretValue") == 0


@pytest.mark.asyncio
async def test_binary_secret_and_arn(aws: ProxyState, moto_server: str, fetcher: Fetcher) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    arn = sm.create_secret(Name="bin", SecretBinary=b"\x00\x01\xff")["ARN"]
    sm.create_secret(Name="text", SecretString="t")
    got = values(await fetcher.fetch((secret(arn, alias="b"), secret("text")), (PRIMARY,), creds))
    assert got["b"][0] == b"\x00\x01\xff"
    assert got["text"][0] == b"t"
    assert aws.count(operation="BatchGetSecretValue") == 1


@pytest.mark.asyncio
async def test_missing_secret_is_not_found_naming_it(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    sm.create_secret(Name="present", SecretString="x")
    with pytest.raises(NotFoundError) as caught:
        await fetcher.fetch((secret("present"), secret("absent")), (PRIMARY,), creds)
    assert '"absent"' in caught.value.message and PRIMARY in caught.value.message


@pytest.mark.asyncio
async def test_failover_after_500_in_primary(aws: ProxyState, moto_server: str, fetcher: Fetcher) -> None:
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(
        Name="db", SecretString="from-failover"
    )
    seed_client(moto_server, "ssm", FAILOVER).put_parameter(Name="p", Value="pv", Type="SecureString")
    aws.faults[(PRIMARY, "*")] = Fault(status=500, code="InternalServiceError")
    got = values(await fetcher.fetch((secret("db"), parameter("p")), (PRIMARY, FAILOVER), creds))
    assert got == {"db": (b"from-failover", got["db"][1]), "p": (b"pv", "1")}
    assert {c.region for c in aws.calls if c.status == 200} == {FAILOVER}


@pytest.mark.asyncio
async def test_failover_object_is_used_in_failover_region(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(Name="db-replica", SecretString="r")
    aws.faults[(PRIMARY, "*")] = Fault(status=503, code="ServiceUnavailable")
    spec = secret("db", alias="db", failover=ObjectRef("db-replica"))
    got = values(await fetcher.fetch((spec,), (PRIMARY, FAILOVER), creds))
    assert got["db"][0] == b"r"


@pytest.mark.asyncio
async def test_4xx_in_primary_is_fatal_without_failover(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(Name="db", SecretString="x")
    aws.faults[(PRIMARY, "*")] = Fault(status=400, code="InvalidRequestException", message="not so")
    with pytest.raises(PreconditionError) as caught:
        await fetcher.fetch((secret("db"),), (PRIMARY, FAILOVER), creds)
    assert '"db"' in caught.value.message and PRIMARY in caught.value.message
    assert all(c.region == PRIMARY for c in aws.calls)


@pytest.mark.asyncio
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
async def test_a_denial_or_throttle_in_primary_fails_over_as_the_go_provider_does(
    aws: ProxyState, moto_server: str, fetcher: Fetcher, code: str
) -> None:
    """Seen running the real Go provider (make compat): only its SDK's modeled client errors stop it."""
    seed_client(moto_server, "secretsmanager", FAILOVER).create_secret(Name="db", SecretString="x")
    seed_client(moto_server, "ssm", FAILOVER).put_parameter(Name="p", Value="pv", Type="String")
    aws.faults[(PRIMARY, "*")] = Fault(status=400, code=code, message="no")
    got = values(await fetcher.fetch((secret("db"), parameter("p")), (PRIMARY, FAILOVER), creds))
    assert {name: value for name, (value, _) in got.items()} == {"db": b"x", "p": b"pv"}


@pytest.mark.asyncio
async def test_a_denial_in_every_region_is_named_as_a_denial(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    for region in (PRIMARY, FAILOVER):
        aws.faults[(region, "*")] = Fault(status=400, code="AccessDeniedException", message="no")
    with pytest.raises(AccessDeniedError) as caught:
        await fetcher.fetch((secret("db"),), (PRIMARY, FAILOVER), creds)
    assert '"db"' in caught.value.message and FAILOVER in caught.value.message


@pytest.mark.asyncio
async def test_all_regions_down_is_unavailable(aws: ProxyState, fetcher: Fetcher) -> None:
    aws.faults[(PRIMARY, "*")] = Fault(status=500)
    aws.faults[(FAILOVER, "*")] = Fault(status=500)
    with pytest.raises(UnavailableError) as caught:
        await fetcher.fetch((secret("db"), parameter("p")), (PRIMARY, FAILOVER), creds)
    assert "Failed to fetch secret from all regions" in caught.value.message
    assert "Failed to fetch parameters from all regions" in caught.value.message
    # standard retry mode, 2 attempts each, per service and region: bounded, no storm
    assert len(aws.calls) == 2 * 2 * 2


@pytest.mark.asyncio
@pytest.mark.parametrize("code", ["AccessDeniedException", "ThrottlingException"])
async def test_batch_refusal_falls_back_and_is_remembered(
    aws: ProxyState, moto_server: str, fetcher: Fetcher, code: str
) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    for i in range(3):
        sm.create_secret(Name=f"s{i}", SecretString=f"v{i}")
    aws.faults[(PRIMARY, "BatchGetSecretValue")] = Fault(status=400, code=code)
    specs = tuple(secret(f"s{i}") for i in range(3))
    got = values(await fetcher.fetch(specs, (PRIMARY,), creds))
    assert {k: v[0] for k, v in got.items()} == {"s0": b"v0", "s1": b"v1", "s2": b"v2"}
    assert aws.count(operation="GetSecretValue") == 3
    # tried once: botocore does not retry the batch API
    assert aws.count(operation="BatchGetSecretValue") == 1
    await fetcher.fetch(specs, (PRIMARY,), creds)
    assert aws.count(operation="BatchGetSecretValue") == 1
    assert aws.count(operation="GetSecretValue") == 6


@pytest.mark.asyncio
async def test_ssm_batches_of_ten_and_two_selectors_of_one_parameter(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    ssm = seed_client(moto_server, "ssm", PRIMARY)
    for i in range(23):
        ssm.put_parameter(Name=f"/app/p{i}", Value=f"v{i}", Type="SecureString")
    ssm.put_parameter(Name="/app/p0", Value="v0-new", Type="SecureString", Overwrite=True)
    specs = [parameter(f"/app/p{i}", alias=f"p{i}") for i in range(23)]
    specs.append(parameter("/app/p0", version_id="1", alias="p0-v1"))
    specs.append(parameter("/app/p0", version_id="2", alias="p0-v2"))
    got = values(await fetcher.fetch(tuple(specs), (PRIMARY,), creds))
    assert got["p0"] == (b"v0-new", "2")
    assert got["p0-v1"] == (b"v0", "1")
    assert got["p0-v2"] == (b"v0-new", "2")
    assert all(got[f"p{i}"] == (f"v{i}".encode(), "1") for i in range(1, 23))
    assert aws.count(operation="GetParameters") == 3


@pytest.mark.asyncio
async def test_ssm_invalid_parameters_fail_naming_them(
    aws: ProxyState, moto_server: str, fetcher: Fetcher
) -> None:
    seed_client(moto_server, "ssm", PRIMARY).put_parameter(Name="there", Value="v", Type="String")
    with pytest.raises(NotFoundError) as caught:
        await fetcher.fetch((parameter("there"), parameter("missing")), (PRIMARY,), creds)
    assert '"missing"' in caught.value.message and "Invalid parameters" in caught.value.message


@pytest.mark.asyncio
async def test_json_secret_round_trip(aws: ProxyState, moto_server: str, fetcher: Fetcher) -> None:
    doc = json.dumps({"user": {"username": "john.doe", "password": "123456"}})
    seed_client(moto_server, "secretsmanager", PRIMARY).create_secret(Name="MySecret", SecretString=doc)
    got = values(await fetcher.fetch((secret("MySecret"),), (PRIMARY,), creds))
    assert json.loads(got["MySecret"][0]) == json.loads(doc)


@pytest.mark.asyncio
@pytest.mark.parametrize(("window", "identities", "batches"), [(5.0, 1, 1), (5.0, 2, 2), (0.0, 1, 4)])
async def test_identical_fetches_in_flight_are_shared_per_identity(
    aws: ProxyState, moto_server: str, window: float, identities: int, batches: int
) -> None:
    sm = seed_client(moto_server, "secretsmanager", PRIMARY)
    for i in range(3):
        sm.create_secret(Name=f"s{i}", SecretString=f"v{i}")
    clients = AwsClients(Settings(aws_max_attempts=2), get_session())
    shared = SharedCalls(window)
    stats = shared.stats
    shared_fetcher = Fetcher(clients, BatchPolicy(BatchRules(min_secrets=2)), shared)
    specs = tuple(secret(f"s{i}") for i in range(3))

    def creds_of(index: int) -> Callable[[str], Awaitable[StaticCreds]]:
        async def creds_for(_region: str) -> StaticCreds:
            return StaticCreds(
                access_key_id=f"AKID{index % identities}", identity=f"static:{index % identities}"
            )

        return creds_for

    aws.delay = 0.2
    try:
        results = await asyncio.gather(
            *(shared_fetcher.fetch(specs, (PRIMARY,), creds_of(i)) for i in range(4))
        )
    finally:
        await clients.close()
    assert all(values(result) == values(results[0]) for result in results)
    assert aws.count(operation="BatchGetSecretValue") == batches == stats.fetches
    assert stats.coalesced == 4 - batches
