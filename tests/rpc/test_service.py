"""The servicer over real gRPC on a Unix socket: translation, error mapping, deadlines, observer."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractContextManager, AsyncExitStack, nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
import pytest_asyncio
from aiobotocore.session import get_session
from grpclib import GRPCError, Status
from grpclib.client import Channel
from structlog.testing import capture_logs

from provider_aws import DISTRIBUTION, __version__, semver
from provider_aws.aws.batchpolicy import BatchPolicy, BatchRules
from provider_aws.aws.clients import AwsClients
from provider_aws.aws.fetch import Fetcher
from provider_aws.aws.sharing import SharedCalls
from provider_aws.errors import (
    AccessDeniedError,
    ConfigError,
    DeadlineError,
    NotFoundError,
    PreconditionError,
    ProviderError,
    UnavailableError,
)
from provider_aws.model import (
    MountedFile,
    MountInput,
    MountPlan,
    MountResult,
    ObjectVersion,
    SecretBytes,
    SecretText,
)
from provider_aws.mounter import Mounter
from provider_aws.rpc.service import Failure, Outcome
from provider_aws.settings import Settings
from testkit.awsproxy import ProxyState
from testkit.betterproto_api.v1alpha1 import CsiDriverProviderStub, MountRequest, VersionRequest
from testkit.betterproto_api.v1alpha1 import ObjectVersion as WireObjectVersion
from testkit.grpc_clients import GrpcioProviderClient, running_provider
from tests.conftest import TEST_ACCESS_KEY, TEST_SECRET_KEY, seed_client

SECRET = b"s3cr3t-\x00-value"
RESULT = MountResult(
    files=(
        MountedFile("db/password", 0o400, SecretBytes(SECRET)),
        MountedFile("empty", 0o644, SecretBytes(b"")),
    ),
    versions=(ObjectVersion("db/password", "v-1"), ObjectVersion("empty", "v-2")),
)
ATTRIBUTES = '{"objects": "- objectName: db/password", "csi.storage.k8s.io/pod.name": "web"}'
WAIT = 10.0


@dataclass
class ScriptedHandler:
    """Records each MountInput; waits on `gate` (if any), then raises `error` or returns `result`."""

    result: MountResult = RESULT
    error: BaseException | None = None
    gate: asyncio.Event | None = None
    seen: list[MountInput] = field(default_factory=list)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)

    async def mount(self, request: MountInput) -> MountResult:
        self.seen.append(request)
        try:
            if self.gate is not None:
                await self.gate.wait()
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        if self.error is not None:
            raise self.error
        return self.result


@dataclass
class RecordingObserver:
    starts: int = 0
    ends: list[tuple[str, Status]] = field(default_factory=list)
    ended: asyncio.Event = field(default_factory=asyncio.Event)

    def started(self) -> RecordingObserver:
        """Itself as the Mount's trace: one Mount at a time in these tests."""
        self.starts += 1
        return self

    def working(self, request: MountInput) -> AbstractContextManager[None]:
        return nullcontext()

    def answered(self, result: MountResult) -> None:
        return None

    def finished(self, outcome: str, status: Status, seconds: float, failure: Failure | None) -> None:
        assert seconds >= 0
        assert (failure is None) == (status is Status.OK or outcome == "cancelled")
        self.ends.append((outcome, status))
        self.ended.set()


@dataclass
class Harness:
    settings: Settings
    handler: ScriptedHandler
    observer: RecordingObserver
    stub: CsiDriverProviderStub


Start = Callable[..., Awaitable[Harness]]


@pytest_asyncio.fixture
async def start(socket_dir: Path) -> AsyncIterator[Start]:
    """`await start(handler, default_timeout=...)` serves `handler` and returns a connected Harness."""
    async with AsyncExitStack() as stack:

        async def _start(handler: ScriptedHandler, *, default_timeout: float = 30.0) -> Harness:
            settings = Settings(
                socket_dir=socket_dir, default_mount_timeout=default_timeout, shutdown_grace=5.0
            )
            observer = RecordingObserver()
            await stack.enter_async_context(running_provider(settings, handler, observer=observer))
            channel = Channel(path=str(settings.socket_path))
            stack.callback(channel.close)
            return Harness(settings, handler, observer, CsiDriverProviderStub(channel))

        yield _start


def mount_request() -> MountRequest:
    return MountRequest(
        attributes=ATTRIBUTES,
        secrets='{"awsAccessKeyId": "AKID"}',
        target_path="/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/store/mount",
        permission="420",
        current_object_version=[WireObjectVersion(id="db/password", version="v-0")],
    )


@pytest.mark.asyncio
async def test_version_names_api_provider_and_semver(start: Start) -> None:
    harness = await start(ScriptedHandler())
    reply = await harness.stub.version(VersionRequest(version="v1alpha1"), timeout=WAIT)
    assert reply.version == "v1alpha1"
    assert reply.runtime_name == DISTRIBUTION
    assert reply.runtime_version == semver(__version__)


@pytest.mark.asyncio
async def test_mount_translates_request_and_result(start: Start) -> None:
    harness = await start(ScriptedHandler())
    reply = await harness.stub.mount(mount_request(), timeout=WAIT)

    assert harness.handler.seen == [
        MountInput(
            attributes=ATTRIBUTES,
            secrets='{"awsAccessKeyId": "AKID"}',
            target_path="/var/lib/kubelet/pods/uid-1/volumes/kubernetes.io~csi/store/mount",
            permission="420",
            current_versions=(("db/password", "v-0"),),
        )
    ]
    assert [(f.path, f.mode, f.contents) for f in reply.files] == [
        ("db/password", 0o400, SECRET),
        ("empty", 0o644, b""),
    ]
    assert [(v.id, v.version) for v in reply.object_version] == [("db/password", "v-1"), ("empty", "v-2")]
    assert harness.observer.starts == 1
    assert harness.observer.ends == [(Outcome.OK, Status.OK)]


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConfigError(["objects: missing", "permission: not a number"]), Status.INVALID_ARGUMENT),
        (PreconditionError("no token for audience sts.amazonaws.com"), Status.FAILED_PRECONDITION),
        (NotFoundError("secret db/password not found in us-east-1"), Status.NOT_FOUND),
        (AccessDeniedError("access denied to db/password"), Status.PERMISSION_DENIED),
        (UnavailableError("Secrets Manager in us-east-1 is unreachable"), Status.UNAVAILABLE),
        (DeadlineError("AWS did not answer in time"), Status.DEADLINE_EXCEEDED),
        (ProviderError("an expected failure without a finer class"), Status.INTERNAL),
    ],
)
async def test_provider_errors_keep_their_status_and_message(
    start: Start, error: ProviderError, status: Status
) -> None:
    harness = await start(ScriptedHandler(error=error))
    with pytest.raises(GRPCError) as raised:
        await harness.stub.mount(mount_request(), timeout=WAIT)
    assert raised.value.status is status
    assert raised.value.message == error.message
    assert harness.observer.ends[0][1] is status


@pytest.mark.asyncio
async def test_config_error_lists_every_problem(start: Start) -> None:
    harness = await start(ScriptedHandler(error=ConfigError(["first problem", "second problem"])))
    with pytest.raises(GRPCError) as raised:
        await harness.stub.mount(mount_request(), timeout=WAIT)
    assert raised.value.message == "2 problems: first problem; second problem"
    assert harness.observer.ends == [(Outcome.ERROR, Status.INVALID_ARGUMENT)]


@pytest.mark.asyncio
@pytest.mark.parametrize("error", [RuntimeError("boom leaked-detail"), TimeoutError("leaked-detail")])
async def test_unexpected_exception_is_internal_logged_and_not_leaked(start: Start, error: Exception) -> None:
    harness = await start(ScriptedHandler(error=error))
    with capture_logs() as logs, pytest.raises(GRPCError) as raised:
        await harness.stub.mount(mount_request(), timeout=WAIT)

    assert raised.value.status is Status.INTERNAL
    message = raised.value.message or ""
    assert "leaked-detail" not in message
    assert ATTRIBUTES not in message
    assert "logs" in message
    [entry] = [e for e in logs if e["log_level"] == "error"]
    assert entry["exc_info"] is True
    assert harness.observer.ends == [(Outcome.INTERNAL, Status.INTERNAL)]


@pytest.mark.asyncio
async def test_driver_deadline_becomes_deadline_exceeded_and_cancels_handler(start: Start) -> None:
    harness = await start(ScriptedHandler(gate=asyncio.Event()))
    with pytest.raises(GRPCError) as raised:
        await harness.stub.mount(mount_request(), timeout=0.5)
    assert raised.value.status is Status.DEADLINE_EXCEEDED
    async with asyncio.timeout(WAIT):
        await harness.handler.cancelled.wait()
    # The server's own timer (just before the driver's deadline) ended the Mount.
    async with asyncio.timeout(WAIT):
        await harness.observer.ended.wait()
    assert harness.observer.ends == [(Outcome.DEADLINE, Status.DEADLINE_EXCEEDED)]


@pytest.mark.asyncio
async def test_default_timeout_applies_without_a_deadline(start: Start) -> None:
    harness = await start(ScriptedHandler(gate=asyncio.Event()), default_timeout=0.3)
    with pytest.raises(GRPCError) as raised:
        await harness.stub.mount(mount_request())  # no deadline at all
    assert raised.value.status is Status.DEADLINE_EXCEEDED
    assert "default mount timeout" in (raised.value.message or "")
    assert harness.handler.cancelled.is_set()


@pytest.mark.asyncio
async def test_grpcio_client_calls_version_and_mount(start: Start) -> None:
    harness = await start(ScriptedHandler())
    with GrpcioProviderClient(harness.settings.socket_path) as client:
        version = await asyncio.to_thread(client.version)
        reply = await asyncio.to_thread(
            client.mount, attributes=ATTRIBUTES, current=[("db/password", "v-0")], permission="256"
        )
    assert (version.version, version.runtime_name) == ("v1alpha1", DISTRIBUTION)
    assert [(f.path, f.mode, f.contents) for f in reply.files] == [
        ("db/password", 0o400, SECRET),
        ("empty", 0o644, b""),
    ]
    assert [(v.id, v.version) for v in reply.object_version] == [("db/password", "v-1"), ("empty", "v-2")]
    [seen] = harness.handler.seen
    assert (seen.secrets, seen.permission) == ("null", "256")
    assert seen.current_versions == (("db/password", "v-0"),)


@pytest.mark.asyncio
async def test_grpcio_client_sees_provider_error_status(start: Start) -> None:
    harness = await start(ScriptedHandler(error=NotFoundError("secret db/password not found in eu-west-1")))
    with GrpcioProviderClient(harness.settings.socket_path) as client, pytest.raises(grpc.RpcError) as raised:
        await asyncio.to_thread(client.mount, attributes=ATTRIBUTES)
    assert raised.value.code() is grpc.StatusCode.NOT_FOUND
    assert raised.value.details() == "secret db/password not found in eu-west-1"


@pytest.mark.parametrize(
    ("pep440", "expected"),
    [
        ("0.1.0", "0.1.0"),
        ("0.2.0.dev3", "0.2.0-dev.3"),
        ("1.0.0rc1", "1.0.0-rc.1"),
        ("1.0.0a2.dev1", "1.0.0-alpha.2.dev.1"),
        ("1.0.0.post2", "1.0.0+post.2"),
        ("1.2.3+g1234abc", "1.2.3+g1234abc"),
        ("0.0.0-dev", "0.0.0-dev"),
    ],
)
def test_semver_from_package_version(pep440: str, expected: str) -> None:
    assert semver(pep440) == expected


@dataclass(frozen=True)
class StaticIdentity:
    """Test credentials for moto, whatever the pod: the identity layer is tested elsewhere."""

    access_key_id: str = TEST_ACCESS_KEY
    secret_access_key: SecretText = field(default_factory=lambda: SecretText(TEST_SECRET_KEY))
    session_token: SecretText | None = None
    identity: str = "static:e2e"

    async def credentials_for(self, plan: MountPlan, region: str) -> StaticIdentity:
        return self


@dataclass(frozen=True)
class NoRegionLookup:
    async def region_for(self, plan: MountPlan) -> str:
        raise AssertionError("the request names its region")


@pytest.mark.asyncio
async def test_end_to_end_mount_through_the_mounter_and_moto(
    aws: ProxyState, moto_server: str, socket_dir: Path
) -> None:
    region = "eu-west-1"
    secrets = seed_client(moto_server, "secretsmanager", region)
    created = secrets.create_secret(Name="app/db", SecretString='{"user": "admin", "password": "pw-1"}')
    seed_client(moto_server, "ssm", region).put_parameter(Name="/app/flag", Value="on", Type="String")
    objects = (
        "- objectName: app/db\n"
        "  objectType: secretsmanager\n"
        "  jmesPath:\n"
        "    - path: password\n"
        "      objectAlias: db-password\n"
        "- objectName: /app/flag\n"
        "  objectType: ssmparameter\n"
        "  objectAlias: flag\n"
    )
    attributes = json.dumps(
        {
            "csi.storage.k8s.io/pod.name": "web-0",
            "csi.storage.k8s.io/pod.namespace": "shop",
            "csi.storage.k8s.io/pod.uid": "uid-1",
            "csi.storage.k8s.io/serviceAccount.name": "web",
            "region": region,
            "objects": objects,
        }
    )
    clients = AwsClients(Settings(), get_session())
    fetcher = Fetcher(clients, BatchPolicy(BatchRules()), SharedCalls(0.0))
    mounter = Mounter(fetcher, StaticIdentity(), NoRegionLookup())
    settings = Settings(socket_dir=socket_dir, shutdown_grace=5.0)
    try:
        async with running_provider(settings, mounter):
            with GrpcioProviderClient(settings.socket_path) as client:
                reply = await asyncio.to_thread(client.mount, attributes=attributes, permission="416")
    finally:
        await clients.close()

    files = {f.path: (f.mode, f.contents) for f in reply.files}
    assert files == {
        "app_db": (0o640, b'{"user": "admin", "password": "pw-1"}'),
        "db-password": (0o640, b"pw-1"),
        "flag": (0o640, b"on"),
    }
    versions = {v.id: v.version for v in reply.object_version}
    assert versions["app_db"] == created["VersionId"]
    assert versions["flag"] == "1"
    assert aws.count(service="secretsmanager") == 1
    assert aws.count(service="ssm") == 1
