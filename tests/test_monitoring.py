"""The chart's monitoring objects: the ServiceMonitor finds the provider's pods through its metrics
Service, every alert expression parses (promtool, built from the Go module proxy like helm), each
provider metric an alert reads is one the provider exports, and the alerts fire on the series they
are about and stay quiet on a healthy provider (promtool's rule unit tests)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.test_chart import CHART, NAMESPACE, helm, one, template  # noqa: F401
from tests.test_readme import exposed_metrics
from tests.test_release import built_tool

ROOT = Path(__file__).resolve().parent.parent
Obj = dict[str, Any]
ON = ("--set", "serviceMonitor.enabled=true", "--set", "prometheusRule.enabled=true")


@pytest.fixture(scope="module")
def promtool() -> Path:
    return built_tool("promtool")


def check_rules(promtool: Path, path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(promtool), "check", "rules", str(path)], capture_output=True, text=True, timeout=60, check=False
    )


@pytest.fixture(scope="module")
def objects(helm: Path) -> list[Obj]:  # noqa: F811
    return template(helm, CHART, *ON)


@pytest.fixture(scope="module")
def rules(objects: list[Obj]) -> list[Obj]:
    (group,) = one(objects, "PrometheusRule")["spec"]["groups"]
    found: list[Obj] = group["rules"]
    return found


def test_monitoring_is_off_by_default(helm: Path) -> None:  # noqa: F811
    kinds = {obj["kind"] for obj in template(helm, CHART)}
    assert not kinds & {"Service", "ServiceMonitor", "PrometheusRule"}


def test_the_service_monitor_scrapes_the_provider_pods(objects: list[Obj]) -> None:
    daemonset, service, monitor = (one(objects, kind) for kind in ("DaemonSet", "Service", "ServiceMonitor"))
    pod_labels = daemonset["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["clusterIP"] == "None"  # each pod its own target
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = daemonset["spec"]["template"]["spec"]["containers"]
    (port,) = service["spec"]["ports"]
    assert (
        port["targetPort"] == "http"
        and {"name": "http", "containerPort": port["port"], "protocol": "TCP"} in (container["ports"])
    )
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    (endpoint,) = monitor["spec"]["endpoints"]
    assert (endpoint["port"], endpoint["path"]) == ("http", "/metrics")


def test_monitoring_labels_reach_both_objects(helm: Path) -> None:  # noqa: F811
    objects = template(helm, CHART, *ON, "--set", "monitoringLabels.release=kube-prometheus-stack")
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert one(objects, kind)["metadata"]["labels"]["release"] == "kube-prometheus-stack"


def test_the_alerts_an_operator_needs_are_there(rules: list[Obj]) -> None:
    assert {rule["alert"] for rule in rules} == {
        "ProviderAwsMountErrors",
        "ProviderAwsInternalErrors",
        "ProviderAwsThrottled",
        "ProviderAwsCredentialFailures",
        "ProviderAwsNotReady",
        "ProviderAwsMetricsDown",
    }
    for rule in rules:
        assert rule["labels"]["severity"] in {"warning", "critical"}
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]


def test_every_alert_expression_parses(promtool: Path, objects: list[Obj], tmp_path: Path) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump({"groups": one(objects, "PrometheusRule")["spec"]["groups"]}))
    done = check_rules(promtool, rules_file)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 6 rules found" in done.stdout


def test_promtool_is_real(promtool: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("groups:\n  - name: x\n    rules:\n      - alert: X\n        expr: sum(rate(x[5m]) >\n")
    assert check_rules(promtool, broken).returncode != 0


def test_every_provider_metric_an_alert_reads_is_exported(rules: list[Obj]) -> None:
    exported = exposed_metrics()
    read = {name for rule in rules for name in re.findall(r"\bprovider_aws_\w+", rule["expr"])}
    assert read, "the alerts read the provider's metrics"
    for name in read:
        base = re.sub(r"_(count|sum|bucket)$", "", name)
        assert name in exported or base in exported, (
            f"an alert reads {name}, which the provider does not export"
        )


# ---- the alerts on synthetic series (promtool test rules) ------------------------------------------

SCOPE = f'namespace="{NAMESPACE}"'
DAEMONSET = "csi-provider-secrets-store-csi-provider-aws"  # the release test_chart renders
GET_SECRET = 'service="secretsmanager", operation="GetSecretValue"'
HEALTHY = [
    (f'provider_aws_mounts_total{{{SCOPE}, outcome="ok", code="OK"}}', "0+100x60"),
    (f'provider_aws_mounts_total{{{SCOPE}, outcome="error", code="NOT_FOUND"}}', "0+1x60"),
    (f'provider_aws_aws_request_duration_seconds_count{{{SCOPE}, {GET_SECRET}, outcome="ok"}}', "0+100x60"),
    (
        f'provider_aws_aws_request_duration_seconds_count{{{SCOPE}, {GET_SECRET}, outcome="throttled"}}',
        "0+1x60",
    ),
    (f'provider_aws_sts_requests_total{{{SCOPE}, region="eu-west-1", outcome="ok"}}', "0+5x60"),
    (f'provider_aws_pod_identity_agent_requests_total{{{SCOPE}, family="ipv4", outcome="ok"}}', "0+5x60"),
    (f'kube_daemonset_status_number_unavailable{{{SCOPE}, daemonset="{DAEMONSET}"}}', "0x60"),
    (f'up{{{SCOPE}, job="{DAEMONSET}-metrics", instance="10.0.0.1:8989"}}', "1x60"),
]
# alert -> (the series of its trouble, the labels it fires with besides alertname and severity)
FAILING: dict[str, tuple[tuple[str, str], dict[str, str]]] = {
    "ProviderAwsMountErrors": (
        (f'provider_aws_mounts_total{{{SCOPE}, outcome="error", code="PERMISSION_DENIED"}}', "0+20x60"),
        {"namespace": NAMESPACE},
    ),
    "ProviderAwsInternalErrors": (
        (f'provider_aws_mounts_total{{{SCOPE}, outcome="internal", code="INTERNAL"}}', "0+1x60"),
        {"namespace": NAMESPACE},
    ),
    "ProviderAwsThrottled": (
        (
            f'provider_aws_aws_request_duration_seconds_count{{{SCOPE}, service="secretsmanager", '
            'operation="BatchGetSecretValue", outcome="throttled"}',
            "0+30x60",
        ),
        {"namespace": NAMESPACE, "service": "secretsmanager"},
    ),
    "ProviderAwsCredentialFailures": (
        (f'provider_aws_sts_requests_total{{{SCOPE}, region="eu-west-1", outcome="denied"}}', "0+1x60"),
        {"namespace": NAMESPACE, "source": "sts"},
    ),
    "ProviderAwsNotReady": (
        (f'kube_daemonset_status_number_unavailable{{{SCOPE}, daemonset="{DAEMONSET}"}}', "2x60"),
        {"namespace": NAMESPACE, "daemonset": DAEMONSET},
    ),
    "ProviderAwsMetricsDown": (
        (f'up{{{SCOPE}, job="{DAEMONSET}-metrics", instance="10.0.0.2:8989"}}', "0x60"),
        {"namespace": NAMESPACE, "job": f"{DAEMONSET}-metrics", "instance": "10.0.0.2:8989"},
    ),
}


@pytest.mark.parametrize("firing", [None, *FAILING])
def test_each_alert_fires_on_its_trouble_and_no_other(
    promtool: Path, rules: list[Obj], tmp_path: Path, firing: str | None
) -> None:
    # Without annotations: promtool compares them too, and they are checked by `check rules` above.
    bare = [{key: value for key, value in rule.items() if key != "annotations"} for rule in rules]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": [{"name": "provider", "rules": bare}]}))
    series = HEALTHY + ([FAILING[firing][0]] if firing else [])
    checks = []
    for rule in rules:
        expected = []
        if rule["alert"] == firing:
            expected = [{"exp_labels": {**FAILING[firing][1], "severity": rule["labels"]["severity"]}}]
        checks.append({"eval_time": "45m", "alertname": rule["alert"], "exp_alerts": expected})
    test = {
        "interval": "1m",
        "input_series": [{"series": name, "values": values} for name, values in series],
        "alert_rule_test": checks,
    }
    (tmp_path / "test.yaml").write_text(yaml.safe_dump({"rule_files": ["rules.yaml"], "tests": [test]}))
    done = subprocess.run(
        [str(promtool), "test", "rules", str(tmp_path / "test.yaml")],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
