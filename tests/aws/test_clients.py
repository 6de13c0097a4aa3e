"""Every identity shares one AWS client (and its connection pool) per service and region, and each
request is signed by the identity that made it, however the calls interleave."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import pytest
from aiobotocore.session import get_session

from provider_aws.aws.clients import AwsClients
from provider_aws.model import SecretText
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from tests.conftest import seed_client

REGION = "eu-west-1"


@dataclass(frozen=True)
class KeyPair:
    access_key_id: str
    secret_access_key: SecretText
    session_token: SecretText | None
    identity: str


def identities(count: int) -> list[KeyPair]:
    return [
        KeyPair(
            f"AKIAPOOLTEST{index:08d}", SecretText(f"pool-secret-{index:04d}" * 2), None, f"static:{index}"
        )
        for index in range(count)
    ]


@pytest.mark.asyncio
async def test_twenty_identities_one_after_another_share_one_client_and_connection(
    aws: ProxyState, moto_server: str
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="pooled", SecretString="x")
    clients = AwsClients(Settings(), get_session())
    pairs = identities(20)
    try:
        for pair in pairs:
            answer = await clients.call("secretsmanager", REGION, pair, "get_secret_value", SecretId="pooled")
            assert answer["Name"] == "pooled"
        assert clients.open_clients == 1
    finally:
        await clients.close()

    calls = [call for call in aws.calls if call.operation == "GetSecretValue"]
    assert [call.access_key_id for call in calls] == [pair.access_key_id for pair in pairs]
    assert len({call.peer for call in calls}) == 1


@pytest.mark.asyncio
async def test_concurrent_identities_share_the_pool_within_its_bound(
    aws: ProxyState, moto_server: str
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="pooled", SecretString="x")
    aws.delay = 0.05
    clients = AwsClients(Settings(max_concurrency=4), get_session())
    pairs = identities(12)
    try:
        answers = await asyncio.wait_for(
            asyncio.gather(
                *(
                    clients.call("secretsmanager", REGION, pair, "get_secret_value", SecretId="pooled")
                    for pair in pairs
                    for _ in range(3)
                )
            ),
            timeout=60,
        )
    finally:
        await clients.close()

    assert len(answers) == 36
    calls = [call for call in aws.calls if call.operation == "GetSecretValue"]
    assert sorted(call.access_key_id for call in calls) == sorted(
        p.access_key_id for p in pairs for _ in range(3)
    )
    assert 1 < aws.max_in_flight <= 4
    # Twelve identities, but no more connections than the process-wide limit allows at once.
    assert len({call.peer for call in calls}) <= 4


@pytest.mark.asyncio
async def test_interleaved_calls_are_each_signed_by_their_own_identity(
    aws: ProxyState, moto_server: str
) -> None:
    seeding = seed_client(moto_server, "secretsmanager", REGION)
    pairs = identities(16)
    for index in range(len(pairs)):
        seeding.create_secret(Name=f"owned-by-{index}", SecretString="x")
    aws.delay = 0.02
    clients = AwsClients(Settings(max_concurrency=8), get_session())

    async def read_own(index: int) -> str:
        await asyncio.sleep(0.001 * (index % 3))
        answer = await clients.call(
            "secretsmanager", REGION, pairs[index], "get_secret_value", SecretId=f"owned-by-{index}"
        )
        return str(answer["Name"])

    try:
        names = await asyncio.wait_for(
            asyncio.gather(*(read_own(index) for _ in range(4) for index in range(len(pairs)))), timeout=60
        )
    finally:
        await clients.close()

    assert sorted(names) == sorted(f"owned-by-{index}" for _ in range(4) for index in range(len(pairs)))
    calls = [call for call in aws.calls if call.operation == "GetSecretValue"]
    assert len(calls) == 64
    owner_of_key = {pair.access_key_id: index for index, pair in enumerate(pairs)}
    for call in calls:
        assert json.loads(call.body)["SecretId"] == f"owned-by-{owner_of_key[call.access_key_id]}"


@pytest.mark.asyncio
async def test_a_request_outside_a_call_is_never_signed(aws: ProxyState, moto_server: str) -> None:
    clients = AwsClients(Settings(), get_session())
    try:
        await clients.call("secretsmanager", REGION, identities(1)[0], "list_secrets")
        async with clients._lease(("secretsmanager", REGION, True, Settings().aws_max_attempts)) as client:
            with pytest.raises(RuntimeError, match=r"outside AwsClients\.call"):
                await client.list_secrets()
    finally:
        await clients.close()
    assert aws.count(operation="ListSecrets") == 1
