"""Access lines for real Mounts (socket -> build_provider -> moto) and the redaction of rendered logs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
import pytest_asyncio
import structlog
from structlog.testing import capture_logs

from provider_aws.app import observed_provider
from provider_aws.model import SecretBytes, SecretText
from provider_aws.ops.logs import REDACTED, redact
from provider_aws.ops.observe import MOUNT_EVENT
from provider_aws.settings import Settings
from testkit.awsproxy import Fault, ProxyState
from testkit.grpc_clients import GrpcioProviderClient, running_provider, short_socket_dir
from testkit.handlers import Held
from testkit.identity import jwt
from testkit.logs import configure_test_logging
from testkit.requests import REGION, STATIC, pod_attributes
from tests.conftest import TEST_SECRET_KEY, seed_client

VALUE = "pw-\u00e9-4f1c9a"  # the secret value mounted in these tests
ACCESS_FIELDS = {
    "event",
    "log_level",
    "pod",
    "namespace",
    "service_account",
    "objects",
    "duration_ms",
    "outcome",
    "code",
    "aws_requests",
}


@dataclass
class Running:
    client: GrpcioProviderClient
    settings: Settings

    async def mount(self, objects: str, pod: str) -> Any:
        return await asyncio.to_thread(
            self.client.mount, attributes=pod_attributes(objects, pod=pod), secrets=STATIC
        )


@pytest_asyncio.fixture
async def provider(aws: ProxyState) -> AsyncIterator[Running]:
    with short_socket_dir() as socket_dir:
        settings = Settings(socket_dir=socket_dir, shutdown_grace=5.0, aws_max_attempts=2)
        async with (
            observed_provider(settings) as served,
            running_provider(settings, served.handler, observer=served.observer),
        ):
            with GrpcioProviderClient(settings.socket_path) as client:
                yield Running(client, settings)


def access_lines(logs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in logs if entry["event"] == MOUNT_EVENT]


@pytest.mark.asyncio
async def test_one_access_line_per_mount_with_counts(
    aws: ProxyState, moto_server: str, provider: Running
) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    sm.create_secret(Name="app/db", SecretString=json.dumps({"password": VALUE}))
    objects = (
        "- objectName: app/db\n  objectType: secretsmanager\n"
        "  jmesPath:\n    - path: password\n      objectAlias: db-password\n"
    )
    with capture_logs() as logs:
        reply = await provider.mount(objects, "web-0")
    assert {f.path: f.contents for f in reply.files}["db-password"] == VALUE.encode()
    [line] = access_lines(logs)
    assert set(line) == ACCESS_FIELDS
    assert line["log_level"] == "info"
    assert (line["pod"], line["namespace"], line["service_account"]) == ("web-0", "shop", "web")
    assert (line["outcome"], line["code"]) == ("ok", "OK")
    assert line["objects"] == 2  # the secret's own file and its jmesPath file
    assert line["aws_requests"] == aws.count() == 1
    assert line["duration_ms"] > 0
    assert all(VALUE not in repr(entry) for entry in logs)


@pytest.mark.asyncio
async def test_failed_mounts_log_their_status_and_requests(
    aws: ProxyState, moto_server: str, provider: Running
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="app/db", SecretString=VALUE)
    objects = "- objectName: app/db\n  objectType: secretsmanager\n"
    with capture_logs() as logs:
        with pytest.raises(grpc.RpcError) as missing:
            await provider.mount("- objectName: app/none\n  objectType: secretsmanager\n", "web-1")
        missing_requests = aws.count()
        aws.faults[(REGION, "*")] = Fault(status=500, code="InternalServiceError")
        with pytest.raises(grpc.RpcError) as failing:
            await provider.mount(objects, "web-2")
        failing_requests = aws.count() - missing_requests
        aws.faults.clear()
        with pytest.raises(grpc.RpcError) as invalid:
            await provider.mount("- objectName: x\n  objectType: bogus\n", "web-3")
    assert missing.value.code() == grpc.StatusCode.NOT_FOUND
    assert failing.value.code() == grpc.StatusCode.UNAVAILABLE
    assert invalid.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    lines = {line["pod"]: line for line in access_lines(logs)}
    assert set(lines) == {"web-1", "web-2", "web-3"}
    assert all(line["log_level"] == "warning" and line["objects"] is None for line in lines.values())
    assert (lines["web-1"]["code"], lines["web-1"]["aws_requests"]) == ("NOT_FOUND", missing_requests)
    # botocore retried the 500 (two attempts): both requests are counted for the failed Mount.
    assert failing_requests == 2
    assert (lines["web-2"]["code"], lines["web-2"]["aws_requests"]) == ("UNAVAILABLE", 2)
    assert (lines["web-3"]["code"], lines["web-3"]["aws_requests"]) == ("INVALID_ARGUMENT", 0)
    assert all(line["outcome"] == "error" for line in lines.values())
    # Each says what failed and why, in the words the driver got (and puts in the pod's events).
    assert all(set(line) == ACCESS_FIELDS | {"error", "message"} for line in lines.values())
    assert {pod: line["error"] for pod, line in lines.items()} == {
        "web-1": "NotFoundError",
        "web-2": "UnavailableError",
        "web-3": "ConfigError",
    }
    assert lines["web-1"]["message"] == missing.value.details()
    assert '"app/none"' in lines["web-1"]["message"] and REGION in lines["web-1"]["message"]
    assert lines["web-2"]["message"] == failing.value.details()
    assert "bogus" in lines["web-3"]["message"]


@pytest.mark.asyncio
async def test_access_line_for_a_request_without_pod_keys(provider: Running) -> None:
    with capture_logs() as logs, pytest.raises(grpc.RpcError) as caught:
        await asyncio.to_thread(provider.client.mount, attributes="[1, 2]", secrets=STATIC)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    [line] = access_lines(logs)
    assert (line["pod"], line["namespace"], line["service_account"]) == (None, None, None)
    assert line["code"] == "INVALID_ARGUMENT"


# Credential-shaped strings, each of which must vanish from the rendered output.
AWS_SECRET_KEY = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQDexampleexample"
ACCESS_KEY_ID = "ASIAIOSFODNN7EXAMPLE"
TOKEN = jwt("shop", "web", "web-0")
PLAIN_SECRET = "correct-horse-battery"


@pytest.fixture
def rendered() -> Iterator[io.StringIO]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    out = io.StringIO()
    try:
        yield out
    finally:
        structlog.reset_defaults()
        for handler in list(root.handlers):
            root.removeHandler(handler)
        for handler in handlers:
            root.addHandler(handler)
        root.setLevel(level)


def emit_everything() -> None:
    log = structlog.get_logger("provider_aws.test")
    log.info("values", value=SecretBytes(PLAIN_SECRET.encode()), text=SecretText(PLAIN_SECRET))
    log.info("named fields", token=PLAIN_SECRET, password=PLAIN_SECRET, session_token=PLAIN_SECRET)
    log.info(
        "nested",
        details={"credentials": {"key": ACCESS_KEY_ID}, "list": [TOKEN, {"aws_secret_access_key": "x1"}]},
        pair=("authorization", f"Bearer {TOKEN}"),
        identity=f"static:{ACCESS_KEY_ID}",
    )
    log.info(f"free text with {AWS_SECRET_KEY} and {SESSION_TOKEN}", raw=PLAIN_SECRET.encode())
    log.info("json text", body=json.dumps({"awsSecretAccessKey": PLAIN_SECRET, "token": TOKEN}))
    log.info("object", error=RuntimeError(f"password={PLAIN_SECRET}"))
    try:
        raise ValueError(f"token={PLAIN_SECRET} at {TOKEN}")
    except ValueError:
        log.exception("failure with a traceback")
    logging.getLogger("botocore.test").warning("header X-Amz-Security-Token: %s", SESSION_TOKEN)
    logging.getLogger("botocore.test").info("below warning: never shown %s", PLAIN_SECRET)


@pytest.mark.parametrize("log_format", ["json", "console"])
def test_rendered_output_holds_no_secret(rendered: io.StringIO, log_format: str) -> None:
    configure_test_logging(log_format, "debug", rendered)
    emit_everything()
    text = rendered.getvalue()
    for secret in (PLAIN_SECRET, AWS_SECRET_KEY, SESSION_TOKEN, TOKEN, TOKEN.split(".")[1], "x1"):
        assert secret not in text
    assert ACCESS_KEY_ID not in text and "ASIA...MPLE" in text
    assert "below warning" not in text
    lines = text.splitlines()
    events = ["values", "named fields", "nested", "free text with", "json text", "object", "failure with"]
    for event in [*events, "header X-Amz-Security-Token"]:
        assert any(event in line for line in lines), event
    assert text.count(REDACTED) >= 12
    if log_format == "json":
        records = [json.loads(line) for line in lines if line.startswith("{")]
        by_event = {record["event"]: record for record in records}
        assert by_event["values"]["value"] == REDACTED and by_event["values"]["text"] == REDACTED
        assert by_event["nested"]["details"]["credentials"] == REDACTED
        assert by_event[f"header X-Amz-Security-Token: {REDACTED}"]["logger"] == "botocore.test"
        assert "ValueError" in by_event["failure with a traceback"]["exception"]
        assert by_event[f"free text with {REDACTED} and {REDACTED}"]["raw"] == f"<{len(PLAIN_SECRET)} bytes>"


@pytest.mark.asyncio
async def test_rendered_access_lines_of_real_mounts(
    aws: ProxyState, moto_server: str, provider: Running, rendered: io.StringIO
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="app/db", SecretString=VALUE)
    configure_test_logging("json", "info", rendered)
    await provider.mount("- objectName: app/db\n  objectType: secretsmanager\n", "web-9")
    records = [json.loads(line) for line in rendered.getvalue().splitlines()]
    [line] = [record for record in records if record["event"] == MOUNT_EVENT]
    assert line["pod"] == "web-9" and line["code"] == "OK" and line["aws_requests"] == 1
    assert line["level"] == "info" and line["timestamp"].endswith("Z")
    assert VALUE not in rendered.getvalue() and TEST_SECRET_KEY not in rendered.getvalue()


def test_redact_keeps_plain_values_and_identifiers() -> None:
    event = {"count": 3, "ratio": 0.5, "ok": True, "none": None, "secretProviderClass": "aws-secrets"}
    assert redact(event) == event
    assert redact("secret_name=app/db objectName=x") == "secret_name=app/db objectName=x"
    deep: Any = PLAIN_SECRET
    for _ in range(12):
        deep = [deep]
    assert PLAIN_SECRET not in repr(redact(deep))


@pytest.mark.asyncio
async def test_concurrent_mounts_each_get_their_own_line(
    aws: ProxyState, moto_server: str, provider: Running
) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    pods = [f"web-{n}" for n in range(8)]
    for pod in pods:
        sm.create_secret(Name=f"app/{pod}", SecretString=f"value of {pod}")
    with capture_logs() as logs:
        await asyncio.gather(
            *(provider.mount(f"- objectName: app/{pod}\n  objectType: secretsmanager\n", pod) for pod in pods)
        )
    lines = {line["pod"]: line for line in access_lines(logs)}
    assert set(lines) == set(pods)
    assert all(
        (line["code"], line["objects"], line["aws_requests"]) == ("OK", 1, 1) for line in lines.values()
    )
    assert aws.count() == len(pods)


@pytest.mark.asyncio
async def test_a_mount_past_its_deadline_is_logged_as_such(
    aws: ProxyState, moto_server: str, provider: Running
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="app/slow", SecretString=VALUE)
    aws.faults[(REGION, "*")] = Fault(delay=2.0, status=500, code="InternalServiceError")
    with capture_logs() as logs:
        with pytest.raises(grpc.RpcError) as caught:
            await asyncio.to_thread(
                provider.client.mount,
                attributes=pod_attributes(
                    "- objectName: app/slow\n  objectType: secretsmanager\n", pod="web-slow"
                ),
                secrets=STATIC,
                timeout=0.5,
            )
        # The client gives up at its own deadline; the provider's line follows its own timer.
        async with asyncio.timeout(10):
            while not access_lines(logs):  # noqa: ASYNC110 - structlog offers no hook to await
                await asyncio.sleep(0.01)
    assert caught.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    [line] = access_lines(logs)
    assert (line["pod"], line["outcome"], line["code"]) == ("web-slow", "deadline", "DEADLINE_EXCEEDED")
    assert line["log_level"] == "warning" and line["objects"] is None
    assert line["duration_ms"] < 2000  # answered before the delayed AWS reply
    # Let the proxy finish the abandoned request (counted when it ends) before the test does.
    await aws.wait_until(lambda state: state.count() >= 1, limit=10)
    assert aws.count() == 1


@pytest.mark.asyncio
async def test_a_mount_rejected_while_draining_is_logged_and_counted(
    aws: ProxyState, moto_server: str
) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="app/db", SecretString=VALUE)
    objects = "- objectName: app/db\n  objectType: secretsmanager\n"
    with short_socket_dir() as socket_dir, capture_logs() as logs:
        settings = Settings(socket_dir=socket_dir, shutdown_grace=10.0)
        async with observed_provider(settings) as served:
            held = Held(served.handler, asyncio.Event(), asyncio.Event())
            async with running_provider(settings, held, observer=served.observer) as stop:
                with GrpcioProviderClient(settings.socket_path) as client:
                    first = asyncio.create_task(
                        asyncio.to_thread(
                            client.mount, attributes=pod_attributes(objects, pod="early"), secrets=STATIC
                        )
                    )
                    async with asyncio.timeout(10):
                        await held.entered.wait()
                    stop.set()  # draining: the held Mount may finish, new ones are refused
                    with pytest.raises(grpc.RpcError) as refused:
                        await asyncio.to_thread(
                            client.mount, attributes=pod_attributes(objects, pod="late"), secrets=STATIC
                        )
                    held.release.set()
                    async with asyncio.timeout(10):
                        reply = await first
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE
    assert [f.path for f in reply.files] == ["app_db"]
    lines = {line["pod"]: line for line in access_lines(logs)}
    assert (lines["early"]["outcome"], lines["early"]["code"], lines["early"]["aws_requests"]) == (
        "ok",
        "OK",
        1,
    )
    # Refused before the handler ran: no pod fields were read, nothing was asked of AWS.
    [late] = [line for line in access_lines(logs) if line["outcome"] == "rejected"]
    assert (late["code"], late["pod"], late["aws_requests"]) == ("UNAVAILABLE", None, 0)
    text = served.metrics.exposition().decode()
    assert 'provider_aws_mounts_total{code="UNAVAILABLE",outcome="rejected"} 1.0' in text
    assert 'provider_aws_mounts_total{code="OK",outcome="ok"} 1.0' in text
    assert "provider_aws_mounts_in_flight 0.0" in text
