"""The leak scanner itself, and proof that the session capture sees what the provider writes."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
import structlog
from grpclib import GRPCError, Status

from provider_aws.app import observed_provider
from provider_aws.errors import CallOutcome, ConfigError
from provider_aws.ops.metrics import Metrics
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.leakscan import LeakScan, harvest_moto, install, report
from testkit.logs import configure_test_logging
from testkit.requests import REGION, pod_attributes
from tests.conftest import TEST_ACCESS_KEY, seed_client

PLANTED = "Qz7-planted-leak-9Kx"  # distinctive: the session scan sees these texts too
SECRET_KEY = "leakscan-static-secret-key-0b9e"


def test_a_value_in_a_log_line_is_found_and_named_by_label_only() -> None:
    scan = LeakScan()
    scan.add_value("planted secret", PLANTED)
    configure_test_logging("json", "info", scan.sink("log"))
    # `objects` is no credential-looking field: redaction keeps it, so the value reaches the line.
    structlog.get_logger("leaktest").info("mount", objects=f"- objectName: {PLANTED}")
    hits = scan.scan()
    assert [(hit.label, hit.source) for hit in hits] == [("planted secret", "log")]
    lines = report(hits)
    assert "planted secret" in lines[1] and "log" in lines[1]
    assert all(PLANTED not in line for line in lines)


def test_a_value_in_a_metrics_body_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    scan = LeakScan()
    scan.add_value("planted secret", PLANTED)
    install(scan, monkeypatch, "unit", None)
    metrics = Metrics()
    metrics.aws_call(PLANTED, "GetSecretValue", "success", CallOutcome.OK, 0.01)
    assert PLANTED in metrics.exposition().decode()
    assert [(hit.label, hit.source) for hit in scan.scan()] == [("planted secret", "unit /metrics")]


def test_a_value_in_a_grpc_error_message_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    scan = LeakScan()
    scan.add_value("planted secret", PLANTED)
    install(scan, monkeypatch, "unit", None)
    error = GRPCError(Status.PERMISSION_DENIED, f"access denied for token {PLANTED}")
    assert error.message is not None
    assert [(hit.label, hit.source) for hit in scan.scan()] == [("planted secret", "unit gRPC error")]


def test_a_value_in_a_provider_error_message_is_found(monkeypatch: pytest.MonkeyPatch) -> None:
    scan = LeakScan()
    scan.add_value("planted secret", PLANTED)
    install(scan, monkeypatch, "unit", None)
    error = ConfigError([f"objects[0]: {PLANTED} is not valid", "objects[1]: bad"])
    assert error.problems[0].endswith("is not valid")
    assert [(hit.label, hit.source) for hit in scan.scan()] == [("planted secret", "unit provider error")]


def test_json_escaped_values_are_found() -> None:
    scan = LeakScan()
    scan.add_value("quoted", 'pa"ss\\word-1')
    scan.add_value("accented", "pässwörd-2")
    scan.add_text("log", json.dumps({"a": 'x pa"ss\\word-1 y', "b": "pässwörd-2"}))
    assert sorted((hit.label, hit.form) for hit in scan.scan()) == [
        ("accented", "JSON-escaped"),
        ("quoted", "JSON-escaped"),
    ]


def test_absent_short_and_numeric_values_give_no_hit() -> None:
    scan = LeakScan()
    scan.add_value("absent", "never-written-anywhere")
    scan.add_value("short", "v")
    scan.add_value("five", "abcde")
    scan.add_value("digits", "123456")
    scan.add_value("binary", b"\xff\xfe")
    scan.add_text("log", '{"event": "mount", "ts": "2026-01-01T00:00:00.123456Z", "x": "v abcde"}')
    assert scan.scan() == ()
    assert scan.searched_values() == 1
    scan.add_value("long number", "12345678901")
    scan.add_text("log", "12345678901")
    assert [hit.label for hit in scan.scan()] == ["long number"]


def test_a_value_in_several_texts_is_reported_once_per_text() -> None:
    scan = LeakScan()
    scan.add_value("planted secret", PLANTED)
    scan.add_value("other name, same value", PLANTED)  # the first label stays
    scan.add_value("generic", "generic-then-named-1", generic=True)
    scan.add_value("named", "generic-then-named-1")  # a specific label replaces a generic one
    scan.add_value("generic again", "generic-then-named-1", generic=True)
    scan.add_text("d", "generic-then-named-1")
    scan.add_text("a", PLANTED)
    scan.add_text("b", f"x{PLANTED}x")
    scan.add_text("c", "nothing here")
    assert sorted((hit.label, hit.source) for hit in scan.scan()) == [
        ("named", "d"),
        ("planted secret", "a"),
        ("planted secret", "b"),
    ]


def test_moto_values_and_their_json_fields_are_harvested(aws: ProxyState, moto_server: str) -> None:
    scan = LeakScan()
    sm = seed_client(moto_server, "secretsmanager", REGION)
    sm.create_secret(Name="leak/json", SecretString=json.dumps({"user": {"password": "harvested-pw-1"}}))
    sm.create_secret(Name="leak/binary", SecretBinary=b"harvested-binary-2")
    ssm = seed_client(moto_server, "ssm", REGION)
    ssm.put_parameter(Name="/leak/p", Value="harvested-param-3", Type="SecureString")
    harvest_moto(scan)
    assert scan.label("harvested-pw-1") == f"secretsmanager {REGION} leak/json field user.password"
    assert scan.label("harvested-binary-2") == f"secretsmanager {REGION} leak/binary (binary)"
    assert scan.label("harvested-param-3") == f"ssm {REGION} /leak/p"


@pytest_asyncio.fixture
async def served(aws: ProxyState) -> AsyncIterator[GrpcioProviderClient]:
    """The provider composed as `provider-aws serve` composes it: observer, access lines, metrics."""
    with short_socket_dir() as socket_dir:
        settings = Settings(socket_dir=Path(socket_dir), shutdown_grace=5.0, aws_max_attempts=1)
        async with (
            observed_provider(settings) as composed,
            running_provider(settings, composed.handler, observer=composed.observer),
        ):
            with GrpcioProviderClient(settings.socket_path) as client:
                yield client


@pytest.mark.asyncio
async def test_the_session_capture_sees_access_lines_errors_and_request_credentials(
    served: GrpcioProviderClient, moto_server: str, leak_scan: LeakScan, request: pytest.FixtureRequest
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(
        Name="leak/db", SecretString="leak-db-value"
    )
    secrets = json.dumps({"awsAccessKeyId": TEST_ACCESS_KEY, "awsSecretAccessKey": SECRET_KEY})
    reply = await asyncio.to_thread(
        served.mount,
        attributes=pod_attributes(
            "- objectName: leak/db\n  objectType: secretsmanager\n",
            pod="leakscan-pod",
            namespace="leakscan-ns",
        ),
        secrets=secrets,
    )
    assert [f.contents for f in reply.files] == [b"leak-db-value"]
    with pytest.raises(grpc.RpcError) as caught:
        await asyncio.to_thread(
            served.mount,
            attributes=pod_attributes(
                "- objectName: leak/missing\n  objectType: secretsmanager\n",
                pod="leakscan-pod",
                namespace="leakscan-ns",
            ),
            secrets=secrets,
        )
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    source = request.node.nodeid
    lines = [json.loads(line) for line in leak_scan.text(f"{source} log").splitlines()]
    access = [line for line in lines if line.get("event") == "mount"]
    assert [(line["pod"], line["code"]) for line in access] == [
        ("leakscan-pod", "OK"),
        ("leakscan-pod", "NOT_FOUND"),
    ]
    # the error message, as sent by the server and as received by the client
    assert "leak/missing" in leak_scan.text(f"{source} gRPC error")
    assert leak_scan.text(f"{source} gRPC error (grpcio client)") == caught.value.details()
    # the static secret key sent in the request is registered; the key id is not
    assert leak_scan.label(SECRET_KEY) == "nodePublishSecretRef awsSecretAccessKey"
    assert leak_scan.label(TEST_ACCESS_KEY) is None
    harvest_moto(leak_scan)
    assert leak_scan.label("leak-db-value") == f"secretsmanager {REGION} leak/db"
    assert not [hit for hit in leak_scan.scan() if hit.source.startswith(source)]


PLANTED_TEST = """
import structlog


def test_logs_a_registered_value(leak_scan):
    leak_scan.add_value("planted value", "planted-leak-0123456789")
    structlog.get_logger("planted").info("oops", detail="planted-leak-0123456789")
"""


def test_a_leak_anywhere_in_the_run_fails_the_run(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The suite's own conftest in a separate pytest process: the scan runs at that session's end.
    root = Path(__file__).resolve().parent.parent
    pytester.makeconftest('pytest_plugins = ["tests.conftest"]\n')
    pytester.makepyfile(test_planted=PLANTED_TEST)
    monkeypatch.setenv("PYTHONPATH", str(root))
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-o", "asyncio_default_fixture_loop_scope=function"
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert result.parseoutcomes()["passed"] == 1  # the test itself passed: the scan failed the run
    output = result.stdout.str()
    assert "planted value" in output
    assert "planted-leak-0123456789" not in output  # reported by label, never by value
