"""Fetch decisions through the AWS call seam, without moto: which requests a plan's objects become,
and when the failover region is asked. Every request is recorded by `FakeAws`; an unscripted one
fails the test. (Against moto's real server: tests/aws/test_fetch.py.)"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from provider_aws.aws.batchpolicy import BatchPolicy, BatchRules
from provider_aws.aws.fetch import Fetcher
from provider_aws.aws.sharing import SharedCalls
from provider_aws.aws.ssm import parameter_key, plan_batches
from provider_aws.errors import NotFoundError, PreconditionError, UnavailableError
from provider_aws.model import ObjectRef, ObjectSpec, ObjectType, SecretText
from testkit.fakeaws import FakeAws, aws_error

PRIMARY, FAILOVER = "eu-west-1", "eu-central-1"
REGIONS = (PRIMARY, FAILOVER)


class Keys:
    access_key_id = "AKIDSEAM"
    secret_access_key = SecretText("seam-secret")
    session_token = None
    identity = "static:seam"


async def keys(_region: str) -> Keys:
    return Keys()


def secret(name: str, *, version_id: str | None = None) -> ObjectSpec:
    return ObjectSpec(ObjectType.SECRETS_MANAGER, ObjectRef(name, version_id), name, 0o644)


def parameter(name: str) -> ObjectSpec:
    return ObjectSpec(ObjectType.SSM_PARAMETER, ObjectRef(name), name.strip("/"), 0o644)


def secret_answer(name: str, region: str) -> dict[str, Any]:
    return {
        "ARN": f"arn:aws:secretsmanager:{region}:1:secret:{name}-AbCdEf",
        "Name": name,
        "SecretString": f"{name}@{region}",
        "VersionId": f"v-{name}",
    }


def batch(region: str) -> Any:
    def answer(params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "SecretValues": [secret_answer(name, region) for name in params["SecretIdList"]],
            "Errors": [],
        }

    return answer


def single(region: str) -> Any:
    return lambda params: secret_answer(params["SecretId"], region)


def ssm(params: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "Parameters": [{"Name": n, "Value": f"value of {n}", "Version": 3} for n in params["Names"]],
        "InvalidParameters": [],
    }


def fetcher(aws: FakeAws) -> Fetcher:
    return Fetcher(aws, BatchPolicy(BatchRules()), SharedCalls(0.0))


@pytest.mark.asyncio
async def test_secrets_go_in_batches_of_20_and_parameters_in_tens() -> None:
    aws = FakeAws()
    aws.on(PRIMARY, "batch_get_secret_value", batch(PRIMARY))
    aws.on(PRIMARY, "get_secret_value", single(PRIMARY))
    aws.on(PRIMARY, "get_parameters", ssm)
    specs = tuple(secret(f"s{i}") for i in range(41)) + tuple(parameter(f"/p{i}") for i in range(25))
    fetched = await fetcher(aws).fetch(specs, REGIONS, keys)
    assert len(fetched) == 66
    # 41 secrets: 20 + 20 batched, the 41st alone through GetSecretValue; 25 parameters: three
    # GetParameters of at most 10 names (spread evenly).
    assert sorted(len(s.params["SecretIdList"]) for s in aws.sent if "SecretIdList" in s.params) == [20, 20]
    assert aws.count(operation="get_secret_value") == 1
    chunks = [len(s.params["Names"]) for s in aws.sent if s.operation == "get_parameters"]
    assert len(chunks) == 3 and max(chunks) <= 10 and sum(chunks) == 25
    assert aws.count(region=FAILOVER) == 0
    assert {s.identity for s in aws.sent} == {"static:seam"}


@pytest.mark.asyncio
async def test_a_pinned_version_is_asked_for_on_its_own() -> None:
    aws = FakeAws()
    aws.on(PRIMARY, "get_secret_value", single(PRIMARY))
    await fetcher(aws).fetch((secret("db", version_id="v-7"),), REGIONS, keys)
    (sent,) = aws.sent
    assert (sent.operation, dict(sent.params)) == ("get_secret_value", {"SecretId": "db", "VersionId": "v-7"})


@pytest.mark.asyncio
async def test_a_5xx_fails_over_and_only_the_failed_objects_move() -> None:
    aws = FakeAws()
    aws.fail(PRIMARY, "get_secret_value", aws_error("get_secret_value", "InternalServiceError", 500))
    aws.on(PRIMARY, "get_parameters", ssm)
    aws.on(FAILOVER, "get_secret_value", single(FAILOVER))
    fetched = await fetcher(aws).fetch((secret("db"), parameter("/app")), REGIONS, keys)
    assert {item.spec.object_name: item.region for item in fetched} == {"db": FAILOVER, "/app": PRIMARY}
    assert aws.count(region=FAILOVER) == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("code", "status", "error"),
    [("InvalidRequestException", 400, PreconditionError), ("ResourceNotFoundException", 400, NotFoundError)],
)
async def test_a_not_found_or_invalid_request_never_fails_over(
    code: str, status: int, error: type[Exception]
) -> None:
    aws = FakeAws()
    aws.fail(PRIMARY, "get_secret_value", aws_error("get_secret_value", code, status))
    with pytest.raises(error, match=f'secret "db" in region {PRIMARY}'):
        await fetcher(aws).fetch((secret("db"),), REGIONS, keys)
    assert aws.count(region=FAILOVER) == 0


@pytest.mark.asyncio
async def test_no_answer_from_any_region_is_unavailable_and_names_each_region() -> None:
    aws = FakeAws()
    for region in REGIONS:
        aws.fail(region, "get_secret_value", aws_error("get_secret_value", "NetworkError", None))
    with pytest.raises(UnavailableError) as failed:
        await fetcher(aws).fetch((secret("db"),), REGIONS, keys)
    assert f"({PRIMARY}, {FAILOVER})" in failed.value.message and '"db": NetworkError' in failed.value.message
    assert aws.count() == 2


@pytest.mark.parametrize(
    ("name", "key"),
    [
        ("/app", "app"),
        ("app", "app"),
        ("/team/app", "/team/app"),
        ("arn:aws:ssm:eu-west-1:1:parameter/app", "arn:aws:ssm:eu-west-1:1:parameter/app"),
    ],
)
def test_a_root_parameter_is_one_parameter_with_or_without_its_slash(name: str, key: str) -> None:
    assert parameter_key(name) == key


def test_the_same_root_parameter_pinned_twice_goes_into_two_batches() -> None:
    batches = plan_batches([ObjectRef("app", "1"), ObjectRef("/app", "2"), ObjectRef("/other")])
    assert len(batches) == 2
    for chunk in batches:
        assert [parameter_key(ref.name) for ref in chunk].count("app") == 1


@pytest.mark.asyncio
async def test_a_parameter_answered_under_the_name_it_was_created_with() -> None:
    """SSM answers "/app" with the parameter created as "app" (and the other way round)."""
    aws = FakeAws()
    created = {parameter_key(name): name for name in ("app", "/team", "/db")}

    def answer(params: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "Parameters": [
                {
                    "Name": created[parameter_key(n)],
                    "Value": f"value of {created[parameter_key(n)]}",
                    "Version": 1,
                }
                for n in params["Names"]
            ],
            "InvalidParameters": [],
        }

    aws.on(PRIMARY, "get_parameters", answer)
    fetched = await fetcher(aws).fetch((parameter("/app"), parameter("team"), parameter("db")), REGIONS, keys)
    assert {item.spec.object_name: bytes(item.value.reveal()) for item in fetched} == {
        "/app": b"value of app",
        "team": b"value of /team",
        "db": b"value of /db",
    }
