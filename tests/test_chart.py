"""charts/secrets-store-csi-provider-aws: linted and rendered by a real helm, every object valid
against the Kubernetes schemas, a values file written for the Go provider's chart taken unchanged,
and the DaemonSet's args accepted by `provider-aws serve`'s own parser.

helm comes from the Go module proxy, pinned in the Makefile (`make helm`, into build/bin, kept
between runs); `make test` builds it first, and the `helm` fixture builds it when pytest runs alone.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tarfile
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate  # type: ignore[import-untyped]
import pytest
import yaml

from provider_aws.cli.main import serve_settings as parse_serve
from provider_aws.settings import GO_FLAGS, Settings, serve_flags
from testkit.makebin import made
from tests.test_manifests import K8S_VERSIONS

ROOT = Path(__file__).resolve().parent.parent
CHART = ROOT / "charts" / "secrets-store-csi-provider-aws"
DATA = ROOT / "tests" / "data" / "helm"
GO_VALUES = DATA / "go-chart-values.yaml"
EVERY_VALUE = DATA / "every-value.yaml"
NAMESPACE = "kube-system"
# The values of the Go provider's chart (secrets-store-csi-driver-provider-aws 2.x values.yaml and
# the k8sThrottlingParams, dnsPolicy and eksAddonVersion its DaemonSet template reads).
GO_CHART_VALUES = frozenset(
    {
        "image",
        "awsRegion",
        "nameOverride",
        "fullnameOverride",
        "providerVolume",
        "kubeletPath",
        "driverWritesSecrets",
        "commonLabels",
        "podLabels",
        "podAnnotations",
        "affinity",
        "resources",
        "priorityClassName",
        "nodeSelector",
        "tolerations",
        "port",
        "updateStrategy",
        "imagePullSecrets",
        "rbac",
        "securityContext",
        "useFipsEndpoint",
        "podIdentityHttpTimeout",
        "dnsConfig",
        "dnsPolicy",
        "eksAddonVersion",
        "k8sThrottlingParams",
        "secrets-store-csi-driver",
    }
)
# Rendered with: the defaults, the Go chart's values file, every value set, and the RBAC variants.
CASES: dict[str, tuple[str, ...]] = {
    "defaults": (),
    "go chart values": ("-f", str(GO_VALUES)),
    "every value": ("-f", str(EVERY_VALUE)),
    "region set": ("--set", "awsRegion=us-east-2"),
    "no NODE_NAME": ("--set", "setNodeName=false"),
}
HELM_TIMEOUT = 120
# `make helm` builds helm from source the first time (about two minutes on two cores).
BUILD_TIMEOUT = 900

Obj = dict[str, Any]


@pytest.fixture(scope="session")
def helm() -> Path:
    """`make test`'s helm (PROVIDER_HELM), else `make helm`'s: a no-op once the pinned version is built."""
    given = os.environ.get("PROVIDER_HELM")
    if given is None:
        return made("helm", "helm")
    path = Path(given)
    assert path.exists(), f"no helm at {path}: remove build/bin/.helm-* and run make helm"
    return path


def run_helm(helm: Path, *args: str) -> str:
    done = subprocess.run(
        [str(helm), *args], capture_output=True, text=True, timeout=HELM_TIMEOUT, check=False
    )
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stdout}{done.stderr}"
    return done.stdout


def template(helm: Path, chart: Path | str, *options: str) -> list[Obj]:
    text = run_helm(helm, "template", "csi-provider", str(chart), "--namespace", NAMESPACE, *options)
    return [doc for doc in yaml.safe_load_all(text) if doc is not None]


@pytest.fixture(scope="module")
def rendered(helm: Path) -> dict[str, list[Obj]]:
    return {name: template(helm, CHART, *options) for name, options in CASES.items()}


def one(objects: list[Obj], kind: str) -> Obj:
    found = [obj for obj in objects if obj["kind"] == kind]
    assert len(found) == 1, f"expected one {kind}, found {len(found)}"
    return found[0]


def pod_spec(objects: list[Obj]) -> Obj:
    spec: Obj = one(objects, "DaemonSet")["spec"]["template"]["spec"]
    return spec


def container(objects: list[Obj]) -> Obj:
    (found,) = pod_spec(objects)["containers"]
    return found


def env_of(found: Obj) -> dict[str, Obj]:
    return {entry["name"]: entry for entry in found.get("env", [])}


def serve_settings(objects: list[Obj]) -> Settings:
    """What `provider-aws serve` makes of the rendered args and plain env: its own parser, not a copy."""
    found = container(objects)
    environ = {name: entry["value"] for name, entry in env_of(found).items() if "value" in entry}
    known = {flag.name for flag in serve_flags()} | set(GO_FLAGS)
    rendered = {arg.lstrip("-").split("=", 1)[0] for arg in found["args"] if arg.startswith("-")}
    assert rendered <= known, f"the chart renders flags the Settings table does not have: {rendered - known}"
    return parse_serve(found["args"], environ)


def grants(objects: list[Obj]) -> set[tuple[str, str]]:
    role = one(objects, "ClusterRole")
    return {
        (resource, verb) for rule in role["rules"] for resource in rule["resources"] for verb in rule["verbs"]
    }


def values_of(path: Path) -> Obj:
    loaded: Obj = yaml.safe_load(path.read_text())
    return loaded


def leaf_paths(values: Mapping[str, Any], prefix: str = "") -> set[str]:
    """Dotted paths of the values, maps of scalars opened up (image.tag), anything else whole."""
    paths: set[str] = set()
    for key, value in values.items():
        if (
            isinstance(value, Mapping)
            and value
            and all(not isinstance(v, Mapping | list) for v in value.values())
        ):
            paths |= {f"{prefix}{key}.{inner}" for inner in value}
        else:
            paths.add(f"{prefix}{key}")
    return paths


# ---- helm itself -------------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_helm_lint_strict(helm: Path, case: str) -> None:
    output = run_helm(helm, "lint", "--strict", str(CHART), "--namespace", NAMESPACE, *CASES[case])
    assert "0 chart(s) failed" in output


def test_values_that_lack_our_keys_render_like_the_defaults(
    helm: Path, tmp_path: Path, rendered: dict[str, list[Obj]]
) -> None:
    """`helm upgrade --reuse-values` of a Go release renders with the Go chart's values alone: a chart
    whose values.yaml holds nothing of ours must render what the defaults render, in every template."""
    bare = tmp_path / CHART.name
    shutil.copytree(CHART, bare, symlinks=False)  # defaults.yaml becomes a copy of our values
    (bare / "values.yaml").write_text("{}\n")
    assert template(helm, bare) == rendered["defaults"]
    enabled = ("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")
    kinds = {obj["kind"] for obj in template(helm, bare, *enabled)}
    assert {"ServiceMonitor", "PrometheusRule", "DaemonSet"} <= kinds


def test_chart_versions_are_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    chart = values_of(CHART / "Chart.yaml")
    assert (chart["version"], chart["appVersion"]) == (version, version)


def test_helm_package_makes_an_archive_that_renders_the_same(
    helm: Path, tmp_path: Path, rendered: dict[str, list[Obj]]
) -> None:
    run_helm(helm, "package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("*.tgz")
    assert archive.name == f"{CHART.name}-{values_of(CHART / 'Chart.yaml')['version']}.tgz"
    with tarfile.open(archive) as tar:
        names = set(tar.getnames())
    assert {f"{CHART.name}/Chart.yaml", f"{CHART.name}/values.yaml"} <= names
    assert template(helm, archive) == rendered["defaults"]


# ---- schemas -----------------------------------------------------------------------------------


@pytest.mark.parametrize("version", K8S_VERSIONS)
@pytest.mark.parametrize("case", CASES)
def test_every_rendered_object_passes_the_kubernetes_schemas(
    rendered: dict[str, list[Obj]], case: str, version: str
) -> None:
    kinds = []
    for obj in rendered[case]:
        if obj["apiVersion"].startswith("monitoring.coreos.com/"):  # CRDs: tests/test_monitoring.py
            kinds.append(obj["kind"])
            continue
        try:
            kubernetes_validate.validate(obj, version, strict=True)
        except jsonschema.ValidationError as error:
            pytest.fail(
                f"{case}: {obj['kind']} against Kubernetes {version}: {error.message} at {list(error.path)}"
            )
        kinds.append(obj["kind"])
    rbac = ["ClusterRole", "ClusterRoleBinding", "ServiceAccount"] if case != "every value" else []
    monitoring = ["Service", "ServiceMonitor", "PrometheusRule"] if case == "every value" else []
    assert sorted(kinds) == sorted(["DaemonSet", *rbac, *monitoring])  # every value: rbac.install false


# ---- the values --------------------------------------------------------------------------------


def test_every_go_chart_value_is_a_value_here_and_the_go_file_sets_them_all() -> None:
    ours = values_of(CHART / "values.yaml")
    assert set(ours) >= GO_CHART_VALUES
    assert set(values_of(GO_VALUES)) == GO_CHART_VALUES


def at(values: Mapping[str, Any], path: str) -> Any:
    node: Any = values
    for key in path.split("."):
        assert isinstance(node, Mapping) and key in node, f"{path} is not set"
        node = node[key]
    return node


def test_the_every_value_file_sets_every_value_away_from_its_default() -> None:
    defaults, every = values_of(CHART / "values.yaml"), values_of(EVERY_VALUE)
    paths = leaf_paths(defaults)
    assert {"image.tag", "rbac.install", "livenessProbe.enabled", "resources", "extraArgs"} <= paths
    for path in paths:
        assert at(every, path) != at(defaults, path), f"{path} is left at its default"


def test_go_chart_values_keep_their_meaning(rendered: dict[str, list[Obj]]) -> None:
    """Each value of a Go chart values file shows up where that chart puts it."""
    go = values_of(GO_VALUES)
    objects = rendered["go chart values"]
    daemonset = one(objects, "DaemonSet")
    pod, found = pod_spec(objects), container(objects)
    settings = serve_settings(objects)
    assert daemonset["metadata"]["name"] == go["fullnameOverride"]
    assert daemonset["spec"]["selector"]["matchLabels"]["app.kubernetes.io/name"] == go["nameOverride"]
    assert found["image"] == f"{go['image']['repository']}:{go['image']['tag']}"
    assert found["imagePullPolicy"] == go["image"]["pullPolicy"]
    assert env_of(found)["AWS_REGION"]["value"] == go["awsRegion"] == settings.aws_region
    assert env_of(found)["AWS_USE_FIPS_ENDPOINT"]["value"] == "true"
    assert settings.socket_dir == Path(go["providerVolume"])
    assert {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v} == {go["providerVolume"]}
    assert settings.driver_writes_secrets is True
    assert (settings.kube_qps, settings.kube_burst) == (20, 40)
    assert settings.pod_identity_timeout == 0.25
    for obj in objects:
        assert obj["metadata"]["labels"]["team"] == go["commonLabels"]["team"]
    template_meta = daemonset["spec"]["template"]["metadata"]
    assert template_meta["labels"]["cost-center"] == go["podLabels"]["cost-center"]
    assert template_meta["annotations"] == go["podAnnotations"]
    assert pod["affinity"] == go["affinity"]
    assert found["resources"] == go["resources"]
    assert pod["priorityClassName"] == go["priorityClassName"]
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux", **go["nodeSelector"]}
    assert pod["tolerations"] == go["tolerations"]
    assert found["ports"] == [{"name": "http", "containerPort": go["port"], "protocol": "TCP"}]
    assert settings.http_addr == f"0.0.0.0:{go['port']}"
    assert daemonset["spec"]["updateStrategy"] == go["updateStrategy"]
    assert pod["imagePullSecrets"] == go["imagePullSecrets"]
    assert pod["serviceAccountName"] == go["rbac"]["serviceAccountName"]
    assert one(objects, "ServiceAccount")["metadata"]["name"] == go["rbac"]["serviceAccountName"]
    # A partial securityContext overrides its keys and keeps the rest of the hardening.
    assert {k: found["securityContext"][k] for k in go["securityContext"]} == go["securityContext"]
    assert found["securityContext"]["readOnlyRootFilesystem"] is True
    assert pod["dnsConfig"] == go["dnsConfig"]
    assert pod["dnsPolicy"] == go["dnsPolicy"]
    assert settings.eks_addon_version == go["eksAddonVersion"]
    # kubeletPath is the Go chart's host mount of pod volumes, which this provider does not make.
    assert not any("kubelet" in mount["mountPath"] for mount in found["volumeMounts"])


def test_without_region_or_node_name_the_provider_may_read_pods(rendered: dict[str, list[Obj]]) -> None:
    serviceaccounts = ("serviceaccounts", "get")
    assert grants(rendered["defaults"]) == {serviceaccounts, ("nodes", "get")}
    assert grants(rendered["no NODE_NAME"]) == {serviceaccounts, ("nodes", "get"), ("pods", "get")}
    assert grants(rendered["region set"]) == {serviceaccounts}
    assert grants(rendered["go chart values"]) == {serviceaccounts}
    for case, objects in rendered.items():
        if case == "every value":  # rbac.install: false
            assert "ClusterRole" not in {obj["kind"] for obj in objects}
            continue
        binding, account = one(objects, "ClusterRoleBinding"), one(objects, "ServiceAccount")
        assert binding["roleRef"]["name"] == one(objects, "ClusterRole")["metadata"]["name"]
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": NAMESPACE}
        ]
        assert pod_spec(objects)["serviceAccountName"] == account["metadata"]["name"]


def test_rbac_install_false_renders_no_rbac(helm: Path) -> None:
    objects = template(helm, CHART, "--set", "rbac.install=false", "--set", "rbac.serviceAccountName=mine")
    assert [obj["kind"] for obj in objects] == ["DaemonSet"]
    assert pod_spec(objects)["serviceAccountName"] == "mine"


# ---- the DaemonSet -----------------------------------------------------------------------------


@pytest.mark.parametrize("case", CASES)
def test_serve_accepts_the_rendered_args(rendered: dict[str, list[Obj]], case: str) -> None:
    objects = rendered[case]
    settings = serve_settings(objects)
    values = {
        **values_of(CHART / "values.yaml"),
        **(values_of(Path(CASES[case][1])) if "-f" in CASES[case] else {}),
    }
    assert settings.socket_dir == Path(values["providerVolume"])
    (mount,) = [m for m in container(objects)["volumeMounts"] if m["name"] == "providervol"]
    assert mount["mountPath"] == values["providerVolume"]
    assert settings.http_addr == f"0.0.0.0:{values['port']}"


def test_every_value_set_reaches_serve(rendered: dict[str, list[Obj]]) -> None:
    every = values_of(EVERY_VALUE)
    objects = rendered["every value"]
    settings = serve_settings(objects)
    assert (settings.log_format, settings.log_level) == ("console", "debug")
    assert (settings.coalesce_window, settings.value_cache_bytes) == (2.5, every["valueCacheBytes"])
    assert (settings.value_cache_max_age, settings.refuse_static_credentials) == (30.0, True)
    assert settings.pod_identity_timeout == 90.0
    assert (settings.kube_qps, settings.kube_burst) == (50, 100)
    assert (settings.max_concurrency, settings.eks_addon_version) == (32, "v0.1.0-eksbuild.1")
    assert settings.node_name is None and "NODE_NAME" not in env_of(container(objects))
    assert env_of(container(objects))["AWS_STS_REGIONAL_ENDPOINTS"]["value"] == "regional"
    assert pod_spec(objects)["terminationGracePeriodSeconds"] == 60


@pytest.mark.parametrize("case", CASES)
def test_probes_hit_the_health_endpoints_on_the_http_port(rendered: dict[str, list[Obj]], case: str) -> None:
    found = container(rendered[case])
    (port,) = found["ports"]
    assert serve_settings(rendered[case]).http_addr.endswith(f":{port['containerPort']}")
    probes = {name: found.get(name) for name in ("livenessProbe", "readinessProbe")}
    expected = {"livenessProbe": "/healthz", "readinessProbe": "/readyz"}
    if case == "every value":  # both probes' enabled: false
        assert probes == {"livenessProbe": None, "readinessProbe": None}
        return
    for name, path in expected.items():
        probe = probes[name]
        assert probe is not None, f"{case}: no {name}"
        assert probe["httpGet"] == {"path": path, "port": port["name"]}
        assert probe["timeoutSeconds"] >= 3 and probe["periodSeconds"] > 0


@pytest.mark.parametrize("case", CASES)
def test_pod_volumes_are_mounted_only_when_asked(rendered: dict[str, list[Obj]], case: str) -> None:
    pod, found = pod_spec(rendered[case]), container(rendered[case])
    host_paths = {v["hostPath"]["path"] for v in pod["volumes"] if "hostPath" in v}
    mounts = {m["mountPath"] for m in found["volumeMounts"]}
    if case == "every value":  # mountKubeletPods: true
        kubelet_pods = f"{values_of(EVERY_VALUE)['kubeletPath']}/pods"
        assert kubelet_pods in host_paths and kubelet_pods in mounts
        host_paths.discard(kubelet_pods)
        mounts.discard(kubelet_pods)
    assert not any(path.endswith("/pods") for path in host_paths | mounts)
    assert len(host_paths) == 1  # the socket directory


@pytest.mark.parametrize("case", ["defaults", "go chart values", "region set"])
def test_node_name_comes_from_the_downward_api(rendered: dict[str, list[Obj]], case: str) -> None:
    env = env_of(container(rendered[case]))
    assert env["NODE_NAME"]["valueFrom"] == {"fieldRef": {"fieldPath": "spec.nodeName"}}


def test_default_security_context_is_hardened(rendered: dict[str, list[Obj]]) -> None:
    pod, found = pod_spec(rendered["defaults"]), container(rendered["defaults"])
    security = found["securityContext"]
    assert security["runAsUser"] == 0  # the host's socket directory is root's
    assert security["privileged"] is False and security["allowPrivilegeEscalation"] is False
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert (
        security["seccompProfile"] == pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    )
    assert pod["hostNetwork"] is False and not pod.get("hostPID", False)
    assert {"name": "tmp", "mountPath": "/tmp"} in found["volumeMounts"]


def test_default_resources_are_the_measured_ones_not_the_go_charts(rendered: dict[str, list[Obj]]) -> None:
    daemonset_yaml = values_of(ROOT / "manifests" / "base" / "daemonset.yaml")
    (kustomize_container,) = daemonset_yaml["spec"]["template"]["spec"]["containers"]
    resources = container(rendered["defaults"])["resources"]
    assert resources == kustomize_container["resources"]
    assert "cpu" not in resources["limits"]
