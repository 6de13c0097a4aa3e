"""The fleet policies against moto's real server through the counting proxy: requests are counted,
never timed. A settable clock drives the back-off, so no test waits for it."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiobotocore.session import get_session

from provider_aws.aws.batchpolicy import SINGLE_ATTEMPT, BatchPolicy, BatchRules
from provider_aws.aws.clients import AwsClients
from provider_aws.aws.fetch import Fetcher
from provider_aws.aws.sharing import SharedCalls
from provider_aws.settings import Settings
from testkit.awsproxy import Fault, ProxyState
from testkit.clock import FakeClock
from tests.aws.test_fetch import FAILOVER, PRIMARY, StaticCreds, creds, secret, values
from tests.conftest import seed_client

THROTTLED = Fault(status=400, code="ThrottlingException", message="Rate exceeded")


@pytest_asyncio.fixture
async def clients(aws: ProxyState) -> AsyncIterator[AwsClients]:
    # three attempts for everything else: the batch API's single attempt is the policy's doing
    built = AwsClients(Settings(aws_max_attempts=3), get_session(), attempts=SINGLE_ATTEMPT)
    try:
        yield built
    finally:
        await built.close()


def fetcher_with(clients: AwsClients, clock: FakeClock, **rules: float) -> Fetcher:
    policy = BatchPolicy(BatchRules(**rules), clock=clock, rng=random.Random(15))
    return Fetcher(clients, policy, SharedCalls(0.0))


def seed(moto_server: str, count: int, *regions: str) -> tuple:
    for region in regions or (PRIMARY,):
        sm = seed_client(moto_server, "secretsmanager", region)
        for i in range(count):
            sm.create_secret(Name=f"app/s{i}", SecretString=f"value-{i}")
    return tuple(secret(f"app/s{i}") for i in range(count))


@pytest.mark.asyncio
async def test_a_throttled_batch_is_sent_once_falls_back_at_once_and_pauses_batching(
    aws: ProxyState, moto_server: str, clients: AwsClients
) -> None:
    specs = seed(moto_server, 10)
    clock = FakeClock()
    fetcher = fetcher_with(clients, clock, backoff_base=8.0, backoff_max=8.0)
    aws.faults[(PRIMARY, "BatchGetSecretValue")] = THROTTLED

    got = values(await fetcher.fetch(specs, (PRIMARY,), creds))
    assert {name: value for name, (value, _) in got.items()} == {
        f"app/s{i}": f"value-{i}".encode() for i in range(10)
    }
    # no botocore retries of the batch, and every secret through GetSecretValue right after it
    assert aws.operations() == {"BatchGetSecretValue": 1, "GetSecretValue": 10}

    del aws.faults[(PRIMARY, "BatchGetSecretValue")]
    clock.now += 3.9  # within the shortest jittered pause (half of 8 s)
    await fetcher.fetch(specs, (PRIMARY,), creds)
    assert aws.operations() == {"BatchGetSecretValue": 1, "GetSecretValue": 20}

    clock.now += 4.2  # past the longest
    await fetcher.fetch(specs, (PRIMARY,), creds)
    assert aws.operations() == {"BatchGetSecretValue": 2, "GetSecretValue": 20}


@pytest.mark.asyncio
async def test_the_pause_is_kept_per_identity(aws: ProxyState, moto_server: str, clients: AwsClients) -> None:
    specs = seed(moto_server, 5)
    fetcher = fetcher_with(clients, FakeClock(), backoff_base=60.0)
    aws.faults[(PRIMARY, "BatchGetSecretValue")] = THROTTLED
    await fetcher.fetch(specs, (PRIMARY,), creds)
    del aws.faults[(PRIMARY, "BatchGetSecretValue")]

    async def other(_region: str) -> StaticCreds:
        return StaticCreds(identity="static:other")

    await fetcher.fetch(specs, (PRIMARY,), other)
    assert aws.operations() == {"BatchGetSecretValue": 2, "GetSecretValue": 5}


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("count", "expected"),
    [
        (3, {"GetSecretValue": 3}),
        (4, {"BatchGetSecretValue": 1}),
        # 23 secrets: a full batch of 20, and 3 left, too few for a second one
        (23, {"BatchGetSecretValue": 1, "GetSecretValue": 3}),
    ],
)
async def test_a_batch_only_for_enough_unpinned_secrets(
    aws: ProxyState, moto_server: str, clients: AwsClients, count: int, expected: dict[str, int]
) -> None:
    specs = seed(moto_server, count)
    await fetcher_with(clients, FakeClock(), min_secrets=4).fetch(specs, (PRIMARY,), creds)
    assert aws.operations() == expected


@pytest.mark.asyncio
async def test_the_node_budget_sends_the_rest_through_get_secret_value(
    aws: ProxyState, moto_server: str, clients: AwsClients
) -> None:
    specs = seed(moto_server, 5)
    clock = FakeClock()
    fetcher = fetcher_with(clients, clock, rate=0.25, burst_seconds=4.0)  # one token, one more after 4 s
    for _ in range(3):
        await fetcher.fetch(specs, (PRIMARY,), creds)
    assert aws.operations() == {"BatchGetSecretValue": 1, "GetSecretValue": 10}
    clock.now += 4.0
    await fetcher.fetch(specs, (PRIMARY,), creds)
    assert aws.operations() == {"BatchGetSecretValue": 2, "GetSecretValue": 10}
    assert not any(call.status >= 400 for call in aws.calls)


@pytest.mark.asyncio
async def test_a_failing_region_sends_the_batch_to_the_failover_region_at_once(
    aws: ProxyState, moto_server: str, clients: AwsClients
) -> None:
    specs = seed(moto_server, 6, PRIMARY, FAILOVER)
    aws.faults[(PRIMARY, "*")] = Fault(status=503, code="ServiceUnavailable")
    got = values(await fetcher_with(clients, FakeClock()).fetch(specs, (PRIMARY, FAILOVER), creds))
    assert len(got) == 6
    by_region = sorted((call.region, call.operation) for call in aws.calls)
    assert by_region == [(FAILOVER, "BatchGetSecretValue"), (PRIMARY, "BatchGetSecretValue")]


@pytest.mark.asyncio
async def test_without_a_failover_region_a_failed_batch_is_retried_one_by_one(
    aws: ProxyState, moto_server: str, clients: AwsClients
) -> None:
    specs = seed(moto_server, 4)
    aws.faults[(PRIMARY, "BatchGetSecretValue")] = Fault(status=500, code="InternalServiceError")
    got = values(await fetcher_with(clients, FakeClock()).fetch(specs, (PRIMARY,), creds))
    assert len(got) == 4
    assert aws.operations() == {"BatchGetSecretValue": 1, "GetSecretValue": 4}
