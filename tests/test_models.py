"""The reduced botocore data against the installed botocore's full data.

The reduction runs on whatever botocore is installed; these checks make an upgrade that renames an
operation, or a model whose shapes the reduction would cut short, fail here instead of at a Mount.
"""

from __future__ import annotations

from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.loaders import Loader
from botocore.model import ServiceModel, Shape

from provider_aws.aws.calls import READ_FIELDS
from provider_aws.aws.models import OPERATIONS, ReducedLoader, reduce_service_model, use_reduced_models


def undocumented(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: undocumented(v) for k, v in node.items() if k != "documentation"}
    return node


def walk(shape: Shape | None, seen: dict[str, Any]) -> None:
    """Resolve every member of `shape`, recursively, into `seen` (raises on a missing shape)."""
    if shape is None or shape.name in seen:
        return
    seen[shape.name] = shape
    for member in getattr(shape, "members", {}).values():
        walk(member, seen)
    for attr in ("member", "key", "value"):
        walk(getattr(shape, attr, None), seen)


@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_reduced_model_keeps_our_operations_and_every_shape_they_reach(service: str) -> None:
    full = Loader().load_service_model(service, "service-2")
    reduced = ReducedLoader().load_service_model(service, "service-2")
    assert set(reduced["operations"]) == OPERATIONS[service] <= set(full["operations"])
    assert len(reduced["shapes"]) < len(full["shapes"])
    model = ServiceModel(reduced, service_name=service)
    full_model = ServiceModel(full, service_name=service)
    assert model.metadata == full_model.metadata
    for name in OPERATIONS[service]:
        operation, full_operation = model.operation_model(name), full_model.operation_model(name)
        seen: dict[str, Any] = {}
        for shape in (operation.input_shape, operation.output_shape, *operation.error_shapes):
            walk(shape, seen)
        errors = {shape.name for shape in operation.error_shapes}
        assert errors == {shape.name for shape in full_operation.error_shapes}
        # every shape a request or answer reaches is there, as botocore has it but for its docs
        for shape_name in seen:
            assert reduced["shapes"][shape_name] == undocumented(full["shapes"][shape_name])


def test_reduction_drops_documentation_but_nothing_a_request_needs() -> None:
    full = Loader().load_service_model("ssm", "service-2")
    reduced = reduce_service_model(full, frozenset({"GetParameters"}))
    assert "documentation" not in repr(reduced)
    op = reduced["operations"]["GetParameters"]
    assert op["http"] == full["operations"]["GetParameters"]["http"]
    assert op["input"] == {"shape": "GetParametersRequest"}


def test_the_operations_are_those_the_provider_calls() -> None:
    # aws/ calls Secrets Manager and SSM through the shared call seam, whose answer reduction names
    # each operation it knows; identity/ calls STS for web identity tokens only.
    backend = {xform_name(op) for service in ("secretsmanager", "ssm") for op in OPERATIONS[service]}
    assert backend == set(READ_FIELDS)
    assert OPERATIONS["sts"] == {"AssumeRoleWithWebIdentity"}


@pytest.mark.parametrize(
    "region", ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "eu-isoe-west-1"]
)
@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_endpoints_resolve_as_with_the_full_table(
    service: str, region: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")

    def endpoint(reduced: bool) -> tuple[str, str | None, str | None]:
        session = botocore.session.get_session()
        if reduced:
            use_reduced_models(session)
        client = session.create_client(
            service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
        )
        try:
            meta = client.meta
            return meta.endpoint_url, meta.region_name, meta.service_model.signing_name
        finally:
            client.close()

    assert endpoint(reduced=True) == endpoint(reduced=False)
