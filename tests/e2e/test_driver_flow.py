"""The seed's whole flow through the real Secrets Store CSI driver (v1.6.0) and a real API server.

For each case a Pod, its ServiceAccount (IRSA annotation) and its SecretProviderClass exist in the API
server; a kubelet stand-in publishes the pod's volume through the driver's CSI socket with TokenRequest
tokens; the driver reads the SecretProviderClass, calls the provider on aws.sock, writes the files into the
tmpfs it mounted and records a SecretProviderClassPodStatus. Every case runs with our provider and with
the Go provider (each behind its own driver) and compares what the pod would see.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack

import pytest

from testkit.awsproxy import AwsProxy, Fault, ProxyState
from testkit.cluster import Cluster
from testkit.csidriver import VolumeTree
from testkit.driverflow import ROTATION_POLL, Flow, Published, scanned_logs, start_flow
from testkit.kubeobjects import POD_IDENTITY_AUDIENCE
from testkit.requests import REGION, SEED_DOC, seed_objects
from tests.conftest import LEAK_SCAN, seed_client

pytestmark = pytest.mark.timeout(300)

FAILOVER = "eu-central-1"
SECRET_MAX = 65536  # Secrets Manager's largest SecretString
DRIVER_RECV_LIMIT = 4 * 1024 * 1024  # the driver's --max-call-recv-msg-size default


@pytest.fixture(scope="module")
def flow(
    cluster: Cluster,
    aws_proxy: AwsProxy,
    tmp_path_factory: pytest.TempPathFactory,
    request: pytest.FixtureRequest,
) -> Iterator[Flow]:
    scan = request.config.stash[LEAK_SCAN]
    with ExitStack() as exits:
        started = start_flow(exits, cluster, aws_proxy, tmp_path_factory.mktemp("flow"), scan)
        try:
            yield started
        finally:
            for stack in started.stacks.values():
                for source, text in scanned_logs(stack):
                    scan.add_text(source, text)


def sm_objects(*names: str) -> str:
    """The `objects` parameter for Secrets Manager secrets by name."""
    return "".join(f"- objectName: {name}\n  objectType: secretsmanager\n" for name in names)


def assert_data_layout(tree: VolumeTree) -> None:
    """The driver's atomic writer: files in a timestamped ..YYYY_… directory, ..data pointing at it, and a
    link per top-level name through ..data."""
    data_dir = tree.links["..data"]
    assert data_dir.startswith("..") and "/" not in data_dir
    for name, target in tree.top_links().items():
        assert target == f"..data/{name}"


def same_tree(published: dict[str, Published]) -> VolumeTree:
    """Our tree, after checking that the Go provider's has the same paths, contents, modes and links."""
    ours, go = published["python"].tree(), published["go"].tree()
    assert ours.data() == go.data()
    assert ours.data_dirs() == go.data_dirs()
    assert ours.top_links() == go.top_links()
    return ours


def recorded_versions(flow: Flow, published: Published) -> dict[str, str]:
    status = flow.kube.pod_status(published.volume)
    assert status["mounted"] is True
    assert status["podName"] == published.volume.pod
    assert status["secretProviderClassName"] == published.volume.secret_provider_class
    assert status["targetPath"] == str(published.target)
    return {o["id"]: o["version"] for o in status.get("objects", [])}


def test_seed_secret_provider_class(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    first = sm.create_secret(Name="MySecret", SecretString=json.dumps(SEED_DOC))
    second = sm.create_secret(Name="MySecret2", SecretString="whole value, any format")
    objects = seed_objects(first["ARN"], second["ARN"])
    published = flow.publish_all(flow.deploy("seed", {"objects": objects}))

    for each in published.values():
        assert each.result.ok, each.result
        assert each.mounted()
    tree = same_tree(published)
    assert tree.data() == {
        "dbusername": (0o644, b"john.doe"),
        "dbpassword": (0o644, b"123456"),
        "foobar": (0o644, b"whole value, any format"),
        first["ARN"]: (0o644, json.dumps(SEED_DOC).encode()),
    }
    assert_data_layout(tree)
    versions = {kind: recorded_versions(flow, each) for kind, each in published.items()}
    assert (
        versions["python"]
        == versions["go"]
        == {
            "dbusername": first["VersionId"],
            "dbpassword": first["VersionId"],
            "foobar": second["VersionId"],
            first["ARN"]: first["VersionId"],
        }
    )
    # one web identity exchange and a GetSecretValue per secret (fewer than 4: no batch)
    assert published["python"].calls == {"AssumeRoleWithWebIdentity": 1, "GetSecretValue": 2}
    assert published["go"].calls == {"AssumeRoleWithWebIdentity": 1, "GetSecretValue": 2}


def test_ssm_jmespath_aliases_path_translation_and_file_permission(
    flow: Flow, aws: ProxyState, moto_server: str
) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    ssm = seed_client(moto_server, "ssm", REGION)
    sm.create_secret(Name="prod/app/key", SecretString="k3y")
    ssm.put_parameter(
        Name="/app/db/config", Type="SecureString", Value=json.dumps({"host": "db.local", "port": "5432"})
    )
    ssm.put_parameter(Name="plain", Type="String", Value="p1")
    objects = (
        "- objectName: prod/app/key\n"
        "  objectType: secretsmanager\n"
        '  filePermission: "0600"\n'
        "- objectName: /app/db/config\n"
        "  objectType: ssmparameter\n"
        "  jmesPath:\n"
        "    - path: host\n"
        "      objectAlias: dbhost\n"
        '      filePermission: "0640"\n'
        "    - path: port\n"
        "      objectAlias: dbport\n"
        "- objectName: plain\n"
        "  objectType: ssmparameter\n"
        "  objectAlias: nested/alias\n"
    )
    published = flow.publish_all(flow.deploy("params", {"objects": objects, "pathTranslation": "-"}))

    for each in published.values():
        assert each.result.ok, each.result
    tree = same_tree(published)
    assert tree.data() == {
        "prod-app-key": (0o600, b"k3y"),
        "-app-db-config": (0o644, json.dumps({"host": "db.local", "port": "5432"}).encode()),
        "dbhost": (0o640, b"db.local"),
        "dbport": (0o644, b"5432"),
        "nested-alias": (0o644, b"p1"),
    }
    assert_data_layout(tree)
    versions = {kind: recorded_versions(flow, each) for kind, each in published.items()}
    assert versions["python"] == versions["go"]
    assert versions["python"]["-app-db-config"] == versions["python"]["dbhost"] == "1"


def test_path_translation_off_creates_directories(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(
        Name="team/db/password", SecretString="pw"
    )
    objects = sm_objects("team/db/password")
    published = flow.publish_all(flow.deploy("nested", {"objects": objects, "pathTranslation": "False"}))
    for each in published.values():
        assert each.result.ok, each.result
    tree = same_tree(published)
    assert tree.data() == {"team/db/password": (0o644, b"pw")}
    assert set(tree.data_dirs()) == {"team", "team/db"}
    assert tree.top_links() == {"team": "..data/team"}


def test_failover_region(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    for region, value in ((REGION, "value-in-primary"), (FAILOVER, "value-in-failover")):
        seed_client(moto_server, "secretsmanager", region).create_secret(Name="db", SecretString=value)
    for operation in ("GetSecretValue", "BatchGetSecretValue"):
        aws.faults[(REGION, operation)] = Fault(status=503, code="ServiceUnavailable")
    objects = sm_objects("db")
    published = flow.publish_all(
        flow.deploy("failover", {"objects": objects, "region": REGION, "failoverRegion": FAILOVER})
    )
    for each in published.values():
        assert each.result.ok, each.result
    assert same_tree(published).visible() == {"db": b"value-in-failover"}


def test_pod_identity(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="pi", SecretString="via the agent")
    objects = sm_objects("pi")
    asked = flow.agent.state.requests
    published = flow.publish_all(
        flow.deploy("podid", {"objects": objects, "usePodIdentity": "true"}, role=None)
    )
    for each in published.values():
        assert each.result.ok, each.result
        assert "AssumeRoleWithWebIdentity" not in each.calls
    assert same_tree(published).visible() == {"pi": b"via the agent"}
    assert flow.agent.state.requests - asked >= 2
    with flow.agent.state.lock:
        used = set(flow.agent.state.authorizations[asked:])
    # each provider sent its own pod's TokenRequest token for the Pod Identity audience
    assert used == {flow.tokens[f"podid-{kind}"][POD_IDENTITY_AUDIENCE]["token"] for kind in published}


def test_a_failing_mount(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="present", SecretString="here")
    objects = sm_objects("present", "absent")
    published = flow.publish_all(flow.deploy("failing", {"objects": objects}))
    for kind, each in published.items():
        # the driver wraps the provider's error with %w: the kubelet (and the pod's events) get the
        # provider's own status code and message after the driver's prefix
        assert each.result.message.startswith(
            f"failed to mount secrets store objects for pod failing-{kind}/app"
        )
        assert "absent" in each.result.message
        assert not each.mounted()  # the driver unmounts the tmpfs after a failed first publish
        assert flow.kube.pod_status_or_none(each.volume) is None
    ours, go = published["python"].result, published["go"].result
    assert ours.code == "NotFound"
    assert 'secret "absent" in region eu-west-1 was not found' in ours.message
    assert go.code == "Unknown"
    assert "ResourceNotFoundException" in go.message


def test_rotation_through_republish(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    changing = sm.create_secret(Name="changing", SecretString="v1")
    sm.create_secret(Name="steady", SecretString="same")
    pinned = sm.create_secret(Name="pinned", SecretString="p1")
    sm.update_secret_version_stage(
        SecretId="pinned", VersionStage="stable", MoveToVersionId=pinned["VersionId"]
    )
    objects = (
        "- objectName: changing\n  objectType: secretsmanager\n"
        "- objectName: steady\n  objectType: secretsmanager\n"
        "- objectName: pinned\n  objectType: secretsmanager\n  objectVersionLabel: stable\n"
    )
    volumes = flow.deploy("rotation", {"objects": objects})
    first = flow.publish_all(volumes)
    for each in first.values():
        assert each.result.ok, each.result
    before = {kind: each.tree() for kind, each in first.items()}
    steady = {kind: recorded_versions(flow, each)["steady"] for kind, each in first.items()}

    # the kubelet republishes (requiresRepublish); within the poll interval the driver skips the provider
    soon = flow.publish_all(volumes)
    for each in soon.values():
        assert each.result.ok and sum(each.calls.values()) == 0

    changed = sm.put_secret_value(SecretId="changing", SecretString="v2")
    moved = sm.put_secret_value(SecretId="pinned", SecretString="p2", VersionStages=["candidate"])
    sm.update_secret_version_stage(
        SecretId="pinned",
        VersionStage="stable",
        MoveToVersionId=moved["VersionId"],
        RemoveFromVersionId=pinned["VersionId"],
    )
    flow.wait_for(lambda: _due(first), "the rotation poll interval", within=ROTATION_POLL * 5)
    rotated = flow.publish_all(volumes)
    for kind, each in rotated.items():
        assert each.result.ok, each.result
        after = each.tree()
        assert after.visible() == {"changing": b"v2", "steady": b"same", "pinned": b"p2"}
        assert after.links["..data"] != before[kind].links["..data"]
        versions = recorded_versions(flow, each)
        assert versions["changing"] == changed["VersionId"] != changing["VersionId"]
        assert versions["pinned"] == moved["VersionId"]
        assert versions["steady"] == steady[kind]
    assert same_tree(rotated).visible()["steady"] == b"same"
    # AWS requests of one rotation poll of a pod with three secrets. Driver v1.6 rotates by republish and
    # sends the provider no current object versions (MountContent(..., nil)), so each poll reads every
    # value; ours reuses the pod's credentials, the Go provider exchanges the token with STS again.
    assert rotated["python"].calls == {"GetSecretValue": 3}
    assert rotated["go"].calls == {"AssumeRoleWithWebIdentity": 1, "GetSecretValue": 3}


def _due(published: dict[str, Published]) -> bool:
    """True once every volume's last write is older than the poll interval (the driver's own check)."""
    return all(
        time.time() - each.stack.driver.seen(each.target).stat().st_mtime > ROTATION_POLL
        for each in published.values()
    )


def test_sync_as_kubernetes_secret(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    sm.create_secret(Name="MySecret2", SecretString="john.doe")
    objects = '- objectName: "MySecret2"\n  objectType: secretsmanager\n  objectAlias: foobar\n'
    secret_objects = [
        {"secretName": "foosecret", "type": "Opaque", "data": [{"objectName": "foobar", "key": "username"}]}
    ]
    volumes = flow.deploy("sync", {"objects": objects}, secret_objects=secret_objects)
    first = flow.publish_all(volumes)
    for each in first.values():
        assert each.result.ok, each.result

    def synced(kind: str, value: bytes) -> Callable[[], bool]:
        return lambda: _synced(kind, value)

    def _synced(kind: str, value: bytes) -> bool:
        data = flow.kube.secret_data(f"sync-{kind}", "foosecret")
        return data is not None and base64.b64decode(data["username"]) == value

    for kind in volumes:
        flow.wait_for(synced(kind, b"john.doe"), f"{kind}: the sync controller creating foosecret")

    sm.put_secret_value(SecretId="MySecret2", SecretString="jane.doe")
    flow.wait_for(lambda: _due(first), "the rotation poll interval", within=ROTATION_POLL * 5)
    for kind, each in flow.publish_all(volumes).items():
        assert each.result.ok, each.result
        flow.wait_for(synced(kind, b"jane.doe"), f"{kind}: foosecret rotated")


def test_the_4_mib_limit_through_the_driver(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    sm = seed_client(moto_server, "secretsmanager", REGION)
    names = [f"big-{i:02d}" for i in range(65)]
    for i, name in enumerate(names):
        sm.create_secret(Name=name, SecretString=(f"{i:02d}" * SECRET_MAX)[:SECRET_MAX])
    under, over = sm_objects(*names[:60]), sm_objects(*names)
    fits = flow.publish_all(flow.deploy("big", {"objects": under}))
    for each in fits.values():
        assert each.result.ok, each.result
    assert len(same_tree(fits).data()) == 60

    too_big = flow.publish_all(flow.deploy("toobig", {"objects": over}))
    for kind, each in too_big.items():
        assert each.result.code == "ResourceExhausted", (kind, each.result)
        assert "grpc: received message larger than max" in each.result.message
        assert f"vs. {DRIVER_RECV_LIMIT})" in each.result.message
        assert not each.mounted()


def test_unpublish_removes_the_mount(flow: Flow, aws: ProxyState, moto_server: str) -> None:
    seed_client(moto_server, "secretsmanager", REGION).create_secret(Name="gone", SecretString="soon")
    volumes = flow.deploy("unpublish", {"objects": sm_objects("gone")})
    for kind, each in flow.publish_all(volumes).items():
        assert each.result.ok and each.mounted()
        assert flow.stacks[kind].kubelet.unpublish(volumes[kind]).ok
        assert not each.mounted()
        seen = each.stack.driver.seen(each.target)
        assert not seen.exists() or list(seen.iterdir()) == []
