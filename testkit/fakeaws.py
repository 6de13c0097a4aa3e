"""A scripted stand-in for the AWS call seam (`aws.clients.AwsCaller`), for fetch logic where moto
adds nothing: each (region, operation) answers from a script, every call is recorded, and a call
nobody scripted fails the test."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from provider_aws.aws.caller import Credentials
from provider_aws.aws.errors import AwsCallError

__all__ = ["FakeAws", "Sent", "aws_error"]

Answer = Callable[[Mapping[str, Any]], dict[str, Any]]


def aws_error(operation: str, code: str, http_status: int | None) -> AwsCallError:
    """A classified failure as AwsClients raises it (http_status None: no answer at all)."""
    return AwsCallError("secretsmanager", operation, code, http_status, f"{code} (scripted)")


@dataclass(frozen=True)
class Sent:
    service: str
    region: str
    operation: str
    params: Mapping[str, Any]
    identity: str | None


@dataclass
class FakeAws:
    # (region, operation) -> answer; an answer may raise an AwsCallError.
    script: dict[tuple[str, str], Answer] = field(default_factory=dict)
    sent: list[Sent] = field(default_factory=list)

    def on(self, region: str, operation: str, answer: Answer) -> None:
        self.script[(region, operation)] = answer

    def fail(self, region: str, operation: str, error: AwsCallError) -> None:
        def raise_it(_params: Mapping[str, Any]) -> dict[str, Any]:
            raise error

        self.on(region, operation, raise_it)

    def count(self, *, region: str | None = None, operation: str | None = None) -> int:
        return sum(
            1
            for item in self.sent
            if (region is None or item.region == region)
            and (operation is None or item.operation == operation)
        )

    async def call(
        self, service: str, region: str, credentials: Credentials | None, operation: str, **params: Any
    ) -> dict[str, Any]:
        identity = credentials.identity if credentials is not None else None
        self.sent.append(Sent(service, region, operation, dict(params), identity))
        answer = self.script.get((region, operation))
        if answer is None:
            raise AssertionError(f"unexpected AWS call: {service} {operation} in {region}")
        return answer(params)
