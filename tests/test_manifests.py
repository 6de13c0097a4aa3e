"""manifests/: the kustomize base renders, every object passes the Kubernetes schemas, and the
install holds to what the provider needs (least privilege, hardening, the socket, the tokens).

Rendering uses `kubectl kustomize` where kubectl exists (it does on this project's machines).
Elsewhere a small renderer below applies the few kustomize features these kustomizations use; a
test checks that both give the same objects wherever kubectl is there to compare with.
SecretProviderClass is a CRD that kubernetes-validate has no schema for: it is checked against
the CRD's own fields (written out below) and the provider's offline parameter rules.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml
from kubernetes_validate.utils import all_versions  # type: ignore[import-untyped]

from provider_aws.request.parse import validate_parameters

ROOT = Path(__file__).resolve().parent.parent
MANIFESTS = ROOT / "manifests"
KUSTOMIZATIONS = ("base", "csidriver")
EXAMPLES = sorted((MANIFESTS / "examples").glob("*.yaml"))
SOCKET_DIR = "/var/run/secrets-store-csi-providers"
DRIVER = "secrets-store.csi.k8s.io"
AUDIENCES = ["sts.amazonaws.com", "pods.eks.amazonaws.com"]
# The oldest and the newest Kubernetes release whose schemas kubernetes-validate ships.
K8S_VERSIONS = sorted({str(all_versions()[0]), kubernetes_validate.latest_version()})

Obj = dict[str, Any]

# secrets-store.csi.x-k8s.io/v1 SecretProviderClass, after the driver's CRD
# (deploy/secrets-store.csi.x-k8s.io_secretproviderclasses.yaml upstream).
_STRING = {"type": "string"}
_STRING_MAP = {"type": "object", "additionalProperties": _STRING}
SECRET_PROVIDER_CLASS_SCHEMA: Obj = {
    "type": "object",
    "required": ["apiVersion", "kind", "metadata", "spec"],
    "additionalProperties": False,
    "properties": {
        "apiVersion": {"const": "secrets-store.csi.x-k8s.io/v1"},
        "kind": {"const": "SecretProviderClass"},
        "metadata": {
            "type": "object",
            "required": ["name"],
            "properties": {"name": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$"}},
        },
        "spec": {
            "type": "object",
            "required": ["provider"],
            "additionalProperties": False,
            "properties": {
                "provider": {"type": "string"},
                "parameters": _STRING_MAP,
                "secretObjects": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "secretName": {"type": "string"},
                            "type": {"type": "string"},
                            "labels": _STRING_MAP,
                            "annotations": _STRING_MAP,
                            "data": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "properties": {"objectName": _STRING, "key": _STRING},
                                },
                            },
                        },
                    },
                },
            },
        },
    },
}


def _load_all(path: Path) -> list[Obj]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _key(obj: Mapping[str, Any]) -> tuple[str, str, str]:
    meta = obj["metadata"]
    return obj["kind"], meta.get("namespace", ""), meta["name"]


# ---- rendering ---------------------------------------------------------------------------------


def _merge(target: Obj, patch: Mapping[str, Any]) -> None:
    """A strategic merge as far as these patches need it: maps merge, lists and scalars replace."""
    for name, value in patch.items():
        if isinstance(value, Mapping) and isinstance(target.get(name), dict):
            _merge(target[name], value)
        else:
            target[name] = copy.deepcopy(value)


def _matches(obj: Obj, target: Mapping[str, str]) -> bool:
    group, _, version = obj["apiVersion"].rpartition("/")
    wanted = {"group": group, "version": version, "kind": obj["kind"], "name": obj["metadata"]["name"]}
    return all(wanted[field] == value for field, value in target.items())


def _containers(obj: Obj) -> Iterator[Obj]:
    pod = obj.get("spec", {}).get("template", {}).get("spec", {})
    yield from pod.get("initContainers", [])
    yield from pod.get("containers", [])


def _set_image(container: Obj, rule: Mapping[str, str]) -> None:
    name, _, tag = container["image"].partition(":")
    if name == rule["name"]:
        container["image"] = f"{rule.get('newName', name)}:{rule.get('newTag', tag)}".rstrip(":")


def render_locally(directory: Path) -> list[Obj]:
    """resources, then patches (with a target), then images: what these kustomizations use."""
    kustomization = yaml.safe_load((directory / "kustomization.yaml").read_text())
    unsupported = set(kustomization) - {"apiVersion", "kind", "resources", "patches", "images"}
    assert not unsupported, f"extend render_locally for {sorted(unsupported)} or drop them"
    objects = [obj for resource in kustomization["resources"] for obj in _load_all(directory / resource)]
    for patch in kustomization.get("patches", []):
        body = yaml.safe_load((directory / patch["path"]).read_text())
        hits = [obj for obj in objects if _matches(obj, patch["target"])]
        assert hits, f"patch {patch['path']} matches no resource"
        for obj in hits:
            _merge(obj, body)
    for rule in kustomization.get("images", []):
        for obj in objects:
            for container in _containers(obj):
                _set_image(container, rule)
    return objects


def render(directory: Path) -> list[Obj]:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return render_locally(directory)
    done = subprocess.run(
        [kubectl, "kustomize", str(directory)], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return [doc for doc in yaml.safe_load_all(done.stdout) if doc is not None]


@pytest.fixture(scope="module")
def rendered() -> dict[str, list[Obj]]:
    return {name: render(MANIFESTS / name) for name in KUSTOMIZATIONS}


def _one(objects: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="no kubectl to compare the local renderer with")
@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_local_renderer_agrees_with_kubectl(name: str, rendered: dict[str, list[Obj]]) -> None:
    local = {_key(obj): obj for obj in render_locally(MANIFESTS / name)}
    assert {_key(obj): obj for obj in rendered[name]} == local


# ---- schemas -----------------------------------------------------------------------------------


def _all_objects(rendered: dict[str, list[Obj]]) -> list[tuple[str, Obj]]:
    objects = [(f"{name}: {_key(obj)}", obj) for name, objs in rendered.items() for obj in objs]
    objects += [(f"{path.name}: {_key(obj)}", obj) for path in EXAMPLES for obj in _load_all(path)]
    return objects


@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_every_object_passes_the_kubernetes_schemas(version: str, rendered: dict[str, list[Obj]]) -> None:
    checked: list[str] = []
    for where, obj in _all_objects(rendered):
        if obj["kind"] == "SecretProviderClass":
            continue  # a CRD: checked by test_secret_provider_classes
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except jsonschema.ValidationError as error:
            pytest.fail(f"{where} against Kubernetes {version}: {error.message} at {list(error.path)}")
        checked.append(obj["kind"])
    assert sorted(set(checked)) == [
        "CSIDriver",
        "ClusterRole",
        "ClusterRoleBinding",
        "DaemonSet",
        "Pod",
        "ServiceAccount",
    ]


def test_a_broken_object_is_caught() -> None:
    """The validation above is real: a misspelt field fails it."""
    broken = {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": "x"}, "automount": True}
    with pytest.raises(jsonschema.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(
            {
                "apiVersion": "secrets-store.csi.x-k8s.io/v1",
                "kind": "SecretProviderClass",
                "metadata": {"name": "x"},
                "spec": {"provider": "aws", "parameter": {}},
            },
            SECRET_PROVIDER_CLASS_SCHEMA,
        )


# ---- the examples ------------------------------------------------------------------------------


def _examples(kind: str) -> list[Obj]:
    return [obj for path in EXAMPLES for obj in _load_all(path) if obj["kind"] == kind]


def _mounted_names(objects_yaml: str) -> set[str]:
    names: set[str] = set()
    for entry in yaml.safe_load(objects_yaml):
        names.add(entry.get("objectAlias") or entry["objectName"].rsplit("/", 1)[-1])
        names.update(jmes["objectAlias"] for jmes in entry.get("jmesPath", []))
    return names


def test_secret_provider_classes() -> None:
    classes = _examples("SecretProviderClass")
    assert len(classes) == 2  # the seed's class and its synced-Secret variant
    for spc in classes:
        jsonschema.validate(spc, SECRET_PROVIDER_CLASS_SCHEMA)
        assert spc["spec"]["provider"] == "aws"
        assert validate_parameters(spc["spec"]["parameters"]) == ()
        mounted = _mounted_names(spc["spec"]["parameters"]["objects"])
        assert {"dbusername", "dbpassword", "foobar"} <= mounted
        for secret in spc["spec"].get("secretObjects", []):
            for item in secret["data"]:
                assert item["objectName"] in mounted, f"{secret['secretName']} syncs a file nobody mounts"


def test_example_pods_use_the_example_classes() -> None:
    classes = {spc["metadata"]["name"]: spc for spc in _examples("SecretProviderClass")}
    synced = {
        (secret["secretName"], item["key"])
        for spc in classes.values()
        for secret in spc["spec"].get("secretObjects", [])
        for item in secret["data"]
    }
    pods = _examples("Pod")
    assert len(pods) == 2
    for pod in pods:
        (volume,) = pod["spec"]["volumes"]
        assert volume["csi"]["driver"] == DRIVER
        assert volume["csi"]["volumeAttributes"]["secretProviderClass"] in classes
        for container in pod["spec"]["containers"]:
            assert [m["name"] for m in container["volumeMounts"]] == [volume["name"]]
            for env in container.get("env", []):
                ref = env["valueFrom"]["secretKeyRef"]
                assert (ref["name"], ref["key"]) in synced


# ---- the base ----------------------------------------------------------------------------------


def test_rbac_grants_only_what_the_provider_calls(rendered: dict[str, list[Obj]]) -> None:
    base = rendered["base"]
    kinds = ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")
    account, role, binding = (_one(base, kind) for kind in kinds)
    grants = {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
    }
    assert grants == {("", "serviceaccounts", "get"), ("", "nodes", "get")}
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {
            "kind": "ServiceAccount",
            "name": account["metadata"]["name"],
            "namespace": account["metadata"]["namespace"],
        }
    ]
    daemonset = _one(base, "DaemonSet")
    assert daemonset["metadata"]["namespace"] == account["metadata"]["namespace"]
    assert daemonset["spec"]["template"]["spec"]["serviceAccountName"] == account["metadata"]["name"]


def _container(rendered: dict[str, list[Obj]]) -> tuple[Obj, Obj]:
    pod = _one(rendered["base"], "DaemonSet")["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    return pod, container


def test_daemonset_is_hardened(rendered: dict[str, list[Obj]]) -> None:
    pod, container = _container(rendered)
    security = container["securityContext"]
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security.get("privileged", False) is False
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not pod.get("hostNetwork", False) and not pod.get("hostPID", False)
    hardening = (MANIFESTS / "base" / "daemonset.yaml").read_text()
    assert re.search(r"#.*runAsNonRoot is impossible", hardening), "say why the provider runs as root"


def test_daemonset_mounts_only_the_socket_directory_from_the_host(rendered: dict[str, list[Obj]]) -> None:
    pod, container = _container(rendered)
    host_paths = {v["name"]: v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    assert list(host_paths.values()) == [SOCKET_DIR]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    (socket_volume,) = host_paths
    assert mounts[socket_volume] == SOCKET_DIR
    assert f"--socket-dir={SOCKET_DIR}" in container["args"]
    assert not any(path.startswith("/var/lib/kubelet") for path in mounts.values())
    assert all("mountPropagation" not in m for m in container["volumeMounts"])


def test_daemonset_runs_the_provider_as_operators_expect(rendered: dict[str, list[Obj]]) -> None:
    pod, container = _container(rendered)
    env = {e["name"]: e for e in container["env"]}
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}
    (port,) = container["ports"]
    assert port["containerPort"] == 8989
    assert "--http-addr=0.0.0.0:8989" in container["args"]
    for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
        assert container[probe]["httpGet"]["path"] == path
        assert container[probe]["httpGet"]["port"] in (port["name"], port["containerPort"])
    resources = container["resources"]
    assert set(resources["requests"]) == {"cpu", "memory"}
    assert "memory" in resources["limits"]
    assert pod["priorityClassName"] == "system-node-critical"
    assert {"operator": "Exists"} in pod["tolerations"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}


def test_image_tag_is_the_package_version(rendered: dict[str, list[Obj]]) -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    _, container = _container(rendered)
    assert container["image"] == f"localhost/secrets-store-csi-provider-aws:{version}"


# ---- the CSIDriver patch -----------------------------------------------------------------------


def test_csidriver_asks_for_both_audiences_and_republish(rendered: dict[str, list[Obj]]) -> None:
    driver = _one(rendered["csidriver"], "CSIDriver")
    assert driver["metadata"]["name"] == DRIVER
    spec = driver["spec"]
    assert [request["audience"] for request in spec["tokenRequests"]] == AUDIENCES
    assert spec["requiresRepublish"] is True
    # What the driver needs of its own object stays as it ships it.
    assert spec["podInfoOnMount"] is True and spec["attachRequired"] is False
    assert spec["volumeLifecycleModes"] == ["Ephemeral"]


def test_csidriver_patch_works_as_a_merge_patch_too() -> None:
    """`kubectl patch --type merge --patch-file` on a Helm-installed driver changes only the tokens."""
    shipped = yaml.safe_load((MANIFESTS / "csidriver" / "csidriver.yaml").read_text())
    patch = yaml.safe_load((MANIFESTS / "csidriver" / "tokenrequests-patch.yaml").read_text())
    assert set(patch["spec"]) == {"tokenRequests", "requiresRepublish"}
    assert (patch["apiVersion"], patch["kind"], patch["metadata"]) == (
        shipped["apiVersion"],
        shipped["kind"],
        shipped["metadata"],
    )
    patched = copy.deepcopy(shipped)
    _merge(patched, patch)
    kubernetes_validate.validate(patched, K8S_VERSIONS[0], strict=True)
    assert {k: v for k, v in patched["spec"].items() if k not in patch["spec"]} == {
        k: v for k, v in shipped["spec"].items() if k not in patch["spec"]
    }
