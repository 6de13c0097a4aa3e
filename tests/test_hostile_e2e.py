"""Hostile input over the real socket: every answer is a reply the driver accepts or a clean refusal.

The provider runs in-process as `provider-aws serve` composes it, against moto (through the counting
proxy) and a local Kubernetes API; requests go over the Unix socket with grpcio, as the driver sends
them. Generated requests reuse the parser's property strategies (tests/request/test_parse_properties.py) and
add hostile file names: `..`, absolute paths, `a/../../b`, backslashes, NUL and control characters,
over-long names and look-alikes of `/` and `.` (U+2215, U+2044, U+FF0F, U+FF0E, U+2025).

Property: either a MountResponse whose every file path is relative, normalised, inside the mount and
passes the driver's own checks, or INVALID_ARGUMENT (NOT_FOUND, PERMISSION_DENIED, FAILED_PRECONDITION
when AWS or the cluster says no); never INTERNAL, UNKNOWN or a hang (each call is bounded).
"""

from __future__ import annotations

import asyncio
import json
import posixpath
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from provider_aws.app import observed_provider
from provider_aws.cli.drivermount import check_response
from provider_aws.request.paths import find_conflicts, path_problem
from provider_aws.rpc.messages import MountResponse
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.identity import served_cluster
from testkit.requests import REGION, STATIC, pod_attributes
from tests.conftest import seed_client
from tests.request.test_parse_properties import attributes as any_attributes
from tests.request.test_parse_properties import current_versions, permissions
from tests.request.test_parse_properties import secrets as any_secrets

NODE = "hostile-node"
TARGET = "/var/lib/kubelet/pods/uid/volumes/kubernetes.io~csi/secrets/mount"
CALL_TIMEOUT = 10.0  # the driver's own deadline on each Mount
EXAMPLE_LIMIT = 20.0  # the test's bound on one answer, whatever the client does
DRIVER_RECEIVE_LIMIT = 4 << 20
CLEAN_REFUSALS = {
    grpc.StatusCode.INVALID_ARGUMENT,
    grpc.StatusCode.NOT_FOUND,
    grpc.StatusCode.PERMISSION_DENIED,
    grpc.StatusCode.FAILED_PRECONDITION,
}
EXAMPLES = settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)

# Secrets Manager accepts these names; each would be a dangerous default file name.
SEEDED_SECRETS = (
    "hostile/plain",
    "..",
    "../escape",
    "a/../../b",
    "/abs/olute",
    "hostile/./dot",
    "hostile//x",
)
SEEDED_PARAMETERS = ("/hostile/param", "/hostile/../up", "hostile..dots")
SECRET_DOC = {"user": {"password": "hostile-doc-password-81c2"}, "a": {"b": "hostile-doc-ab-5d07"}}

_FRAGMENTS = [
    "a",
    "b",
    "é",
    " ",
    ".",
    "..",
    "/",
    "\\",
    "\x00",
    "\x01",
    "\n",
    "\x1f",
    "\x7f",
    "\u2215",  # division slash
    "\u2044",  # fraction slash
    "\uff0f",  # fullwidth solidus
    "\uff0e",  # fullwidth full stop
    "\u2025",  # two dot leader
    "\u202e",  # right-to-left override
    "\ufeff",
]
hostile_names = st.one_of(
    st.lists(st.sampled_from(_FRAGMENTS), min_size=1, max_size=10).map("".join),
    st.sampled_from(
        [
            "..",
            ".",
            "../x",
            "a/../../b",
            "/etc/passwd",
            "//x",
            "a/./b",
            "a//b",
            "a/",
            "..data",
            "..2026_01_01",
            "a\\..\\..\\b",
            "\u2215etc\u2215passwd",
            "\uff0e\uff0e/x",
            "x" * 256,
            "a/" * 200 + "b",
            "y" * 5000,
        ]
    ),
    st.text(max_size=12),
)
translations = st.sampled_from(["", "_", "False", "-", "/", ".", "..", "\\", "\u2215", "\x00", "ab"])
object_names = st.one_of(st.sampled_from(SEEDED_SECRETS), hostile_names)
jmes_entries = st.fixed_dictionaries(
    {"path": st.one_of(st.sampled_from(["user.password", "a.b", "a", "missing.x"]), hostile_names)},
    optional={"objectAlias": hostile_names, "filePermission": st.sampled_from(["0400", "0644", "0777"])},
)
secret_objects = st.fixed_dictionaries(
    {"objectName": object_names, "objectType": st.just("secretsmanager")},
    optional={
        "objectAlias": hostile_names,
        "jmesPath": st.lists(jmes_entries, min_size=1, max_size=3),
        "filePermission": st.sampled_from(["0400", "0644", "0600", "4755", "0o644"]),
    },
)
parameter_objects = st.fixed_dictionaries(
    {
        "objectName": st.one_of(st.sampled_from(SEEDED_PARAMETERS), hostile_names),
        "objectType": st.just("ssmparameter"),
    },
    optional={"objectAlias": hostile_names},
)
hostile_objects = st.lists(st.one_of(secret_objects, parameter_objects), min_size=1, max_size=5).map(
    lambda doc: yaml.safe_dump(doc, allow_unicode=True)
)


@dataclass
class Answer:
    code: grpc.StatusCode
    details: str = ""
    paths: tuple[str, ...] = ()


def assert_driver_accepts(raw: bytes) -> tuple[str, ...]:
    """The driver's checks, plus: each path normalised and resolving inside the mount."""
    assert len(raw) < DRIVER_RECEIVE_LIMIT
    response = MountResponse.FromString(raw)
    check_response(response)
    paths = tuple(file.path for file in response.files)
    for path in paths:
        assert path_problem(path) is None, path
        assert posixpath.normpath(path) == path, path
        resolved = posixpath.normpath(posixpath.join(TARGET, path))
        assert resolved.startswith(TARGET + "/"), path
    assert len(set(paths)) == len(paths)
    assert find_conflicts(paths) == ()
    ids = [version.id for version in response.object_version]
    assert len(set(ids)) == len(ids)
    return paths


@dataclass
class Served:
    client: GrpcioProviderClient

    async def ask(
        self,
        attributes: str,
        *,
        secrets: str = STATIC,
        permission: str = "420",
        current: Iterable[tuple[str, str]] = (),
    ) -> Answer:
        call = asyncio.to_thread(
            self.client.mount,
            attributes=attributes,
            secrets=secrets,
            target_path=TARGET,
            permission=permission,
            current=tuple(current),
            timeout=CALL_TIMEOUT,
        )
        try:
            reply = await asyncio.wait_for(call, EXAMPLE_LIMIT)
        except grpc.RpcError as error:
            assert isinstance(error, grpc.Call)
            code, details = error.code(), error.details() or ""
            assert code in CLEAN_REFUSALS, (code, details)
            assert details, "a refusal says why"
            return Answer(code, details)
        return Answer(grpc.StatusCode.OK, paths=assert_driver_accepts(reply.SerializeToString()))


def seed(moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    for name in SEEDED_SECRETS:
        sm.create_secret(Name=name, SecretString=json.dumps(SECRET_DOC))
    ssm = seed_client(moto_server, "ssm", REGION)
    for name in SEEDED_PARAMETERS:
        ssm.put_parameter(Name=name, Value=f"hostile-parameter-{len(name)}-3e1f", Type="SecureString")


@pytest_asyncio.fixture
async def served(
    aws: ProxyState, moto_server: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Served]:
    seed(moto_server)
    with served_cluster(tmp_path, monkeypatch) as cluster, short_socket_dir() as socket_dir:
        cluster.state.nodes[NODE] = {"topology.kubernetes.io/region": REGION}
        settings = Settings(socket_dir=socket_dir, shutdown_grace=5.0, aws_max_attempts=1, node_name=NODE)
        async with (
            observed_provider(settings) as composed,
            running_provider(settings, composed.handler, observer=composed.observer),
        ):
            with GrpcioProviderClient(settings.socket_path) as client:
                yield Served(client)


@pytest.mark.asyncio
@EXAMPLES
@given(attributes=any_attributes, secrets=any_secrets, permission=permissions, current=current_versions)
async def test_any_request_is_answered_or_refused_cleanly(
    served: Served, attributes: str, secrets: str, permission: str, current: tuple[tuple[str, str], ...]
) -> None:
    answer = await served.ask(attributes, secrets=secrets, permission=permission, current=current)
    event(answer.code.name)


@pytest.mark.asyncio
@settings(EXAMPLES, max_examples=80)
@given(objects=hostile_objects, translation=translations)
async def test_hostile_file_names_never_leave_the_mount(
    served: Served, objects: str, translation: str
) -> None:
    answer = await served.ask(pod_attributes(objects, pathTranslation=translation))
    event(answer.code.name)


@pytest.mark.asyncio
async def test_dangerous_secret_names_and_aliases_are_refused_or_kept_inside(served: Served) -> None:
    """Fixed cases, so that both sides of the property are certainly reached."""
    outcomes: dict[str, Answer] = {}
    for name in SEEDED_SECRETS:
        outcomes[name] = await served.ask(
            pod_attributes(f"- objectName: '{name}'\n  objectType: secretsmanager\n")
        )
    assert outcomes["hostile/plain"].paths == ("hostile_plain",)
    assert outcomes["/abs/olute"].paths == ("_abs_olute",)  # '/' translated, so never absolute
    for name in ("..", "../escape"):
        assert outcomes[name].code == grpc.StatusCode.INVALID_ARGUMENT, name
    # Without translation the name keeps its '/': '..' elements and empty elements are refused.
    for name in ("a/../../b", "hostile/./dot", "hostile//x", "../escape"):
        kept = await served.ask(
            pod_attributes(f"- objectName: '{name}'\n  objectType: secretsmanager\n", pathTranslation="False")
        )
        assert kept.code == grpc.StatusCode.INVALID_ARGUMENT, name
    aliased = await served.ask(
        pod_attributes(
            "- objectName: hostile/plain\n  objectType: secretsmanager\n"
            '  objectAlias: "\\u2215etc\\uff0e\\uff0e"\n'
            "  jmesPath:\n    - path: user.password\n      objectAlias: 'a\\b'\n"
        )
    )
    assert aliased.code == grpc.StatusCode.OK
    assert set(aliased.paths) == {"\u2215etc\uff0e\uff0e", "a\\b"}  # look-alikes are plain characters


def _alias_bomb(levels: int, width: int) -> str:
    """Billion laughs: `width ** levels` leaves if anything expanded the aliases."""
    lines = ['- &l0 ["lol"]']
    for level in range(1, levels):
        lines.append(f"- &l{level} [" + ", ".join([f"*l{level - 1}"] * width) + "]")
    lines.append(f"- objectName: hostile/plain\n  objectType: secretsmanager\n  jmesPath: *l{levels - 1}")
    return "\n".join(lines)


def _deep(depth: int) -> str:
    return "- objectName: hostile/plain\n  objectType: secretsmanager\n  x: " + "[" * depth + "]" * depth


def _huge_objects(count: int) -> str:
    return "".join(
        f"- {{objectName: hostile/plain, objectType: secretsmanager, objectAlias: f{i}}}\n"
        for i in range(count)
    )


NO_VERSIONS: tuple[tuple[str, str], ...] = ()
# name -> (attributes, current object versions)
HOSTILE_DOCUMENTS = {
    "alias bomb 10^9": (pod_attributes(_alias_bomb(10, 10)), NO_VERSIONS),
    "self-referencing alias": (
        pod_attributes("- &a {objectName: x, objectType: secretsmanager, failoverObject: *a}"),
        NO_VERSIONS,
    ),
    "nesting 100000 deep": (pod_attributes(_deep(100_000)), NO_VERSIONS),
    "5000 objects": (pod_attributes(_huge_objects(5000)), NO_VERSIONS),
    "3 MiB attribute": (
        pod_attributes("- objectName: hostile/plain\n", padding="p" * (3 << 20)),
        NO_VERSIONS,
    ),
    "3 MiB object name": (
        pod_attributes("- objectName: " + "n" * (3 << 20) + "\n  objectType: secretsmanager\n"),
        NO_VERSIONS,
    ),
    "5000 current versions": (
        pod_attributes("- objectName: hostile/plain\n  objectType: secretsmanager\n"),
        tuple((f"id-{i}", f"v-{i}") for i in range(5000)),
    ),
}


@pytest.mark.asyncio
async def test_deeply_nested_attributes_json_is_invalid_argument(served: Served) -> None:
    answer = await served.ask('{"objects": ' + "[" * 100_000 + "]" * 100_000 + "}")
    assert answer.code == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.asyncio
async def test_deeply_nested_secret_value_under_jmespath_is_refused(served: Served, moto_server: str) -> None:
    deep = "[" * 30_000 + "]" * 30_000  # under Secrets Manager's 64 KiB
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="hostile/deep", SecretString=deep)
    objects = (
        "- objectName: hostile/deep\n  objectType: secretsmanager\n  jmesPath: [{path: a, objectAlias: x}]\n"
    )
    answer = await served.ask(pod_attributes(objects))
    assert answer.code == grpc.StatusCode.FAILED_PRECONDITION


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field} in /proc/self/status")


def _reset_peak_rss() -> float:
    """Starts a new peak (VmHWM) at the current RSS, so that earlier tests' peaks do not count."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status_mib("VmRSS")


@pytest.mark.asyncio
async def test_bombs_and_huge_documents_are_refused_within_bounds(served: Served) -> None:
    before = _reset_peak_rss()
    codes: dict[str, grpc.StatusCode] = {}
    for name, (attributes, current) in HOSTILE_DOCUMENTS.items():
        codes[name] = (await served.ask(attributes, current=current)).code
    growth = _status_mib("VmHWM") - before
    # The 3 MiB requests are themselves held a few times (client, wire, server): allow for that, not more.
    assert growth < 160, f"peak memory grew by {growth:.0f} MiB"
    refused = {name for name, code in codes.items() if code == grpc.StatusCode.INVALID_ARGUMENT}
    assert refused >= set(HOSTILE_DOCUMENTS) - {"5000 current versions"}, codes
    # The provider is still serving.
    answer = await served.ask(pod_attributes("- objectName: hostile/plain\n  objectType: secretsmanager\n"))
    assert answer.paths == ("hostile_plain",)
