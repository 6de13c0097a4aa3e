"""botocore's data reduced to what the provider uses, as botocore loads it.

botocore parses a whole service model per service (SSM's is 760 kB of JSON: every operation with
its documentation) and the endpoint table of every AWS service, and keeps them for the life of the
process: about 11 MiB of Python objects for the three services we call. `ReducedLoader` is a
botocore `Loader` (installed on the session as its `data_loader` component, botocore's supported
seam for this) that keeps, of each model of `OPERATIONS`' services, only those operations and the
shapes they reach, without documentation, and of the endpoint table only those services. It reads
the installed botocore's own files, so an upgrade of botocore cannot leave it serving stale models;
tests/test_models.py checks the reduction against the full models.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from botocore.loaders import Loader, instance_cache

__all__ = ["OPERATIONS", "ReducedLoader", "reduce_endpoints", "reduce_service_model", "use_reduced_models"]

# Every AWS operation the provider calls, by service: Secrets Manager and SSM in aws/, STS in identity/.
OPERATIONS: Mapping[str, frozenset[str]] = {
    "secretsmanager": frozenset({"GetSecretValue", "BatchGetSecretValue", "DescribeSecret"}),
    "ssm": frozenset({"GetParameters"}),
    "sts": frozenset({"AssumeRoleWithWebIdentity"}),
}
_DROPPED_KEYS = frozenset({"documentation", "documentationUrl", "examples"})


def _without_docs(node: Any) -> Any:
    if isinstance(node, dict):
        return {key: _without_docs(value) for key, value in node.items() if key not in _DROPPED_KEYS}
    if isinstance(node, list):
        return [_without_docs(item) for item in node]
    return node


def _shape_names(node: Any) -> Iterator[str]:
    """Names of the shapes `node` (an operation or a shape) refers to."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "shape" and isinstance(value, str):
                yield value
            else:
                yield from _shape_names(value)
    elif isinstance(node, list):
        for item in node:
            yield from _shape_names(item)


def reduce_service_model(model: dict[str, Any], operations: frozenset[str]) -> dict[str, Any]:
    """`model` (a botocore service-2) with only `operations` and the shapes they reach, no docs."""
    kept_operations = {name: op for name, op in model["operations"].items() if name in operations}
    shapes: dict[str, Any] = model["shapes"]
    reached: set[str] = set()
    todo = list(_shape_names(kept_operations))
    while todo:
        name = todo.pop()
        if name not in reached:
            reached.add(name)
            todo.extend(_shape_names(shapes[name]))
    reduced = {key: value for key, value in model.items() if key not in {"operations", "shapes"}}
    reduced["operations"] = kept_operations
    reduced["shapes"] = {name: shapes[name] for name in sorted(reached)}
    return dict(_without_docs(reduced))


def reduce_endpoints(endpoints: dict[str, Any], services: frozenset[str]) -> dict[str, Any]:
    """botocore's endpoint table with, in each partition, only `services`."""
    partitions = [
        {**partition, "services": {k: v for k, v in partition.get("services", {}).items() if k in services}}
        for partition in endpoints.get("partitions", [])
    ]
    return {**endpoints, "partitions": partitions}


class ReducedLoader(Loader):  # type: ignore[misc]  # botocore is untyped
    """botocore's Loader keeping reduced copies of the files it reduces (see the module docstring).

    `load_data_with_path` is the one cached read under every model and data file; this override
    shares its cache key, so the reduced copy replaces the full one before anyone keeps it.
    """

    @instance_cache  # type: ignore[untyped-decorator]  # botocore is untyped
    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        data, path = super().load_data_with_path(name)
        parts = name.split("/")
        if name == "endpoints":
            data = reduce_endpoints(data, frozenset(OPERATIONS))
        elif len(parts) == 3 and parts[2] == "service-2" and parts[0] in OPERATIONS:
            data = reduce_service_model(data, OPERATIONS[parts[0]])
        return data, path


def use_reduced_models(session: Any) -> None:
    """Make `session` (a botocore or aiobotocore Session) load models through a `ReducedLoader`."""
    previous = session.get_component("data_loader")
    session.register_component(
        "data_loader",
        ReducedLoader(extra_search_paths=list(previous.search_paths), include_default_search_paths=False),
    )
