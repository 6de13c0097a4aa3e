"""The reduced botocore data against the installed botocore's full data.

The reduction runs on whatever botocore is installed; these checks make an upgrade that renames an
operation, or a model whose shapes the reduction would cut short, fail here instead of at a Mount.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore import xform_name
from botocore.loaders import JSONFileLoader, Loader
from botocore.model import ServiceModel, Shape

from provider_aws.aws.readfields import READ_FIELDS
from provider_aws.aws.servicemodels import (
    OPERATIONS,
    ReducedLoader,
    prepare,
    reduce_service_model,
    use_reduced_models,
)
from provider_aws.aws.session import USER_AGENT, set_up_session


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


REGIONS = ["us-east-1", "eu-west-1", "cn-north-1", "us-gov-west-1", "eu-isoe-west-1"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("botocore")
    prepare(directory)
    return directory


class RecordingFileLoader(JSONFileLoader):  # type: ignore[misc]
    """botocore's JSON file loader, noting every file it reads."""

    def __init__(self) -> None:
        self.read: list[str] = []

    def load_file(self, file_path: str) -> Any:
        found = super().load_file(file_path)
        if found is not None:
            self.read.append(file_path)
        return found


def test_prepared_files_are_the_reduction_of_the_installed_botocore_and_replace_its_files(
    prepared: Path,
) -> None:
    files = RecordingFileLoader()
    loader = ReducedLoader(prepared=prepared, file_loader=files)
    assert loader.uses_prepared
    reducing = ReducedLoader()
    for service in OPERATIONS:
        assert loader.load_service_model(service, "service-2") == reducing.load_service_model(
            service, "service-2"
        )
    endpoints, path = loader.load_data_with_path("endpoints")
    assert endpoints == reducing.load_data("endpoints")
    assert loader.is_builtin_path(path)  # botocore treats its own endpoint data differently
    # Of botocore's own files only the small ones were read: no model, not the endpoint table.
    assert files.read and not [read for read in files.read if read.endswith(("/service-2", "/endpoints"))]


def test_prepared_files_of_another_botocore_are_ignored(prepared: Path, tmp_path: Path) -> None:
    stale = tmp_path / "stale"
    shutil.copytree(prepared, stale)
    stamp = json.loads((stale / "stamp.json").read_text())
    stamp["made_for"]["botocore"] = "0.0.1"
    (stale / "stamp.json").write_text(json.dumps(stamp))
    loader = ReducedLoader(prepared=stale)
    assert not loader.uses_prepared
    assert set(loader.load_service_model("ssm", "service-2")["operations"]) == OPERATIONS["ssm"]
    assert not ReducedLoader(prepared=tmp_path / "nothing").uses_prepared


@pytest.mark.parametrize("how", ["prepared", "reduced as loaded"])
@pytest.mark.parametrize("region", REGIONS)
@pytest.mark.parametrize("service", sorted(OPERATIONS))
def test_endpoints_resolve_as_with_the_full_table(
    service: str, region: str, how: str, prepared: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_CONFIG_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")

    def endpoint(reduced: bool) -> tuple[str, str | None, str | None]:
        session = botocore.session.get_session()
        if reduced:
            use_reduced_models(session, prepared if how == "prepared" else None)
        client = session.create_client(
            service, region_name=region, aws_access_key_id="a", aws_secret_access_key="b"
        )
        try:
            meta = client.meta
            return meta.endpoint_url, meta.region_name, meta.service_model.signing_name
        finally:
            client.close()

    assert endpoint(reduced=True) == endpoint(reduced=False)


def test_sessions_send_the_providers_fixed_user_agent() -> None:
    session = botocore.session.get_session()
    set_up_session(session)
    client = session.create_client(
        "sts", region_name="eu-west-1", aws_access_key_id="a", aws_secret_access_key="b"
    )
    try:
        agent = client._user_agent_creator.to_string()
    finally:
        client.close()
    # the fixed string (an aiobotocore session appends botocore's version): nothing rebuilt per request
    assert agent == USER_AGENT
