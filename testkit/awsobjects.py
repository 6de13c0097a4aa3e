"""Objects stored in moto before a Mount: one `Put` and one `store` for the driver-client tests of the Go
tables and the compat rig that runs them against both providers."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from testkit.requests import REGION

__all__ = ["Put", "store"]


@dataclass(frozen=True)
class Put:
    """One object stored in moto; `token` chooses a secret's VersionId (32-64 characters)."""

    kind: str  # "secret", "binary" or "parameter"
    name: str
    value: str
    region: str = REGION
    token: str | None = None


def store(seed_client: Callable[[str, str], Any], puts: Sequence[Put]) -> dict[str, str]:
    """Put the objects into moto through `seed_client(service, region)`; returns secret name -> ARN (of
    the first region it was put in)."""
    arns: dict[str, str] = {}
    for put in puts:
        if put.kind == "parameter":
            client = seed_client("ssm", put.region)
            client.put_parameter(Name=put.name, Value=put.value, Type="String", Overwrite=True)
            continue
        body: dict[str, Any] = (
            {"SecretBinary": put.value.encode()} if put.kind == "binary" else {"SecretString": put.value}
        )
        if put.token is not None:
            body["ClientRequestToken"] = put.token
        arn = seed_client("secretsmanager", put.region).create_secret(Name=put.name, **body)["ARN"]
        arns.setdefault(put.name, arn)
    return arns
