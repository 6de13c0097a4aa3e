"""botocore's data reduced to what the provider uses, prepared at install time or reduced as it loads.

botocore parses a whole service model per service (SSM's holds every operation with its
documentation) and the endpoint table of every AWS service, and keeps them for the life of the
process: megabytes of Python objects for the three services we call. `ReducedLoader` is a
botocore `Loader` (installed on the session as its `data_loader` component, botocore's supported
seam for this) that keeps, of each model of `OPERATIONS`' services, only those operations and the
shapes they reach, without documentation, and of the endpoint table only those services. It reads
the installed botocore's own files, so an upgrade of botocore cannot leave it serving stale models;
tests/aws/test_servicemodels.py checks the reduction against the full models.

Reducing as botocore loads still parses each whole file once, and the freed objects leave the
allocator's arenas fragmented, and costs the first Mount memory and CPU. So `make install`
and the image build run `python -m provider_aws.aws.servicemodels`, which writes the reduced files, stamped
with the botocore version and the operations they were made for, to `PREPARED_DATA`; the loader
reads those instead when the stamp matches the running botocore and `OPERATIONS`, and reduces as it
loads otherwise. Nothing generated is committed.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import botocore
from botocore.loaders import Loader, instance_cache

__all__ = [
    "OPERATIONS",
    "PREPARED_DATA",
    "ReducedLoader",
    "main",
    "prepare",
    "reduce_endpoints",
    "reduce_service_model",
    "use_reduced_models",
]

# Where `prepare` writes by default: beside the interpreter's packages (the image's virtualenv).
PREPARED_DATA = Path(sys.prefix) / "share" / "secrets-store-csi-provider-aws" / "botocore"
_STAMP = "stamp.json"

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


def _stamp() -> dict[str, Any]:
    return {
        "botocore": botocore.__version__,
        "operations": {service: sorted(names) for service, names in sorted(OPERATIONS.items())},
    }


def _reduced(name: str, data: Any) -> Any:
    parts = name.split("/")
    if name == "endpoints":
        return reduce_endpoints(data, frozenset(OPERATIONS))
    if len(parts) == 3 and parts[2] == "service-2" and parts[0] in OPERATIONS:
        return reduce_service_model(data, OPERATIONS[parts[0]])
    return data


class ReducedLoader(Loader):  # type: ignore[misc]  # botocore is untyped
    """botocore's Loader with the files it reduces read from `prepared` when that matches, else
    reduced as they load (see the module docstring).

    `load_data_with_path` is the one cached read under every model and data file; this override
    shares its cache key, so the reduced copy replaces the full one before anyone keeps it. A
    prepared file is returned with the path of the file it was made from: botocore treats built-in
    endpoint data differently from a user's own.
    """

    def __init__(self, *args: Any, prepared: Path | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._prepared = prepared
        self._sources = _prepared_sources(prepared)

    @property
    def uses_prepared(self) -> bool:
        return bool(self._sources)

    @instance_cache  # type: ignore[untyped-decorator]  # botocore is untyped
    def load_data_with_path(self, name: str) -> tuple[Any, str]:
        source = self._sources.get(name)
        if source is not None and self._prepared is not None:
            return json.loads((self._prepared / f"{name}.json").read_text()), source
        data, path = super().load_data_with_path(name)
        return _reduced(name, data), path


def _prepared_sources(directory: Path | None) -> dict[str, str]:
    """name -> source path of each file prepared in `directory`, if they were made for this
    botocore and these operations; empty otherwise (nothing prepared, or stale)."""
    if directory is None:
        return {}
    try:
        stamp = json.loads((directory / _STAMP).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(stamp, dict) or stamp.get("made_for") != _stamp():
        return {}
    return {str(name): str(path) for name, path in dict(stamp.get("sources", {})).items()}


def prepare(directory: Path, loader: Loader | None = None) -> list[str]:
    """Write the reduced files of the installed botocore to `directory`; returns their names."""
    loader = loader if loader is not None else Loader()
    names = ["endpoints"] + [
        f"{service}/{loader.determine_latest_version(service, 'service-2')}/service-2"
        for service in OPERATIONS
    ]
    sources: dict[str, str] = {}
    for name in names:
        data, path = loader.load_data_with_path(name)
        target = directory / f"{name}.json"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(_reduced(name, data), separators=(",", ":")))
        sources[name] = path
    # The stamp last: a directory cut short by a failure is never taken for a prepared one.
    (directory / _STAMP).write_text(json.dumps({"made_for": _stamp(), "sources": sources}, indent=1))
    return names


def use_reduced_models(session: Any, prepared: Path | None = PREPARED_DATA) -> None:
    """Make `session` (a botocore or aiobotocore Session) load models through a `ReducedLoader`."""
    previous = session.get_component("data_loader")
    session.register_component(
        "data_loader",
        ReducedLoader(
            extra_search_paths=list(previous.search_paths),
            include_default_search_paths=False,
            prepared=prepared,
        ),
    )


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m provider_aws.aws.servicemodels [DIR]`: prepare the reduced files (in `PREPARED_DATA`)."""
    args = list(sys.argv[1:] if argv is None else argv)
    directory = Path(args[0]) if args else PREPARED_DATA
    names = prepare(directory)
    print(f"prepared {len(names)} reduced botocore files for botocore {botocore.__version__} in {directory}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
