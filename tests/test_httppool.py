"""The AWS clients of all identities share one connection pool, and each request stays signed
by its own identity."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import pytest
from aiobotocore.session import get_session

from provider_aws.awsclients import AwsClients
from provider_aws.model import SecretText
from provider_aws.settings import Settings
from tests.conftest import seed_client
from tests.support.awsproxy import ProxyState

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
async def test_twenty_identities_one_after_another_reuse_one_connection(
    aws: ProxyState, moto_server: str
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="pooled", SecretString="x")
    clients = AwsClients(Settings(), get_session())
    pairs = identities(20)
    try:
        for pair in pairs:
            answer = await clients.call("secretsmanager", REGION, pair, "get_secret_value", SecretId="pooled")
            assert answer["Name"] == "pooled"
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
