"""The offline deploy checks catch what they claim to (deploy/check_observability.py)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(path: str, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, ROOT / path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


checks = load("deploy/check_observability.py", "check_observability")
builder = load("deploy/grafana/build_dashboards.py", "build_dashboards")

SERVICE = {
    "apiVersion": "v1",
    "kind": "Service",
    "metadata": {"name": "herald-api", "labels": {"app.kubernetes.io/name": "herald"}},
    "spec": {"ports": [{"name": "http", "port": 8000}]},
}
MONITOR: dict[str, Any] = {
    "apiVersion": "monitoring.coreos.com/v1",
    "kind": "ServiceMonitor",
    "metadata": {"name": "herald"},
    "spec": {
        "selector": {"matchLabels": {"app.kubernetes.io/name": "herald"}},
        "endpoints": [{"port": "http", "path": "/metrics", "interval": "15s"}],
    },
}


def test_servicemonitor_valid() -> None:
    assert checks.servicemonitor_errors([SERVICE, MONITOR]) == []


def test_servicemonitor_schema_errors() -> None:
    bad = copy.deepcopy(MONITOR)
    bad["spec"]["endpoints"][0]["interval"] = "15 seconds"
    bad["spec"]["endpoints"][0]["scheme"] = "ftp"
    bad["spec"]["endpoint"] = []  # a typo: unknown field
    errors = "\n".join(checks.servicemonitor_errors([SERVICE, bad]))
    assert "interval" in errors
    assert "ftp" in errors
    assert "endpoint" in errors


def test_servicemonitor_port_and_selector_must_match_a_service() -> None:
    wrong_port = copy.deepcopy(MONITOR)
    wrong_port["spec"]["endpoints"][0]["port"] = "metrics"
    assert any("port metrics" in e for e in checks.servicemonitor_errors([SERVICE, wrong_port]))
    wrong_labels = copy.deepcopy(MONITOR)
    wrong_labels["spec"]["selector"]["matchLabels"] = {"app": "other"}
    assert any(
        "picks no Service" in e for e in checks.servicemonitor_errors([SERVICE, wrong_labels])
    )


def test_named_metrics_ignores_labels_strings_and_functions() -> None:
    expr = (
        'sum by (queue) (rate(herald_messages_consumed_total{queue="herald_x"}[5m]))'
        " / on (queue) herald_other"
    )
    assert checks.named_metrics(expr) == {"herald_messages_consumed_total", "herald_other"}


def test_every_herald_metric_in_dashboards_and_alerts_is_exposed() -> None:
    exposed = checks.exposed_names() | checks.EXTERNAL
    named = set()
    for _where, expr in [*checks.dashboard_exprs(), *checks.alert_exprs()]:
        named |= checks.named_metrics(expr)
    assert named - exposed == set()
    assert "herald_executions_finished_total" in named
    assert "herald_jobs_overdue" in named


def test_dashboards_are_current_with_stable_uids_units_and_datasource_variable() -> None:
    rendered = builder.render()
    uids = set()
    for name, text in rendered.items():
        assert (ROOT / "deploy/grafana/dashboards" / name).read_text() == text, name
        board = json.loads(text)
        uids.add(board["uid"])
        assert board["templating"]["list"][0]["type"] == "datasource"
        for panel in board["panels"]:
            assert panel["fieldConfig"]["defaults"]["unit"], panel["title"]
            assert panel["datasource"]["uid"] == "${datasource}"
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])
    assert uids == {"herald-scheduler", "herald-pipeline", "herald-dependencies", "herald-api"}


def test_every_alert_has_text_and_a_unit_test() -> None:
    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text())
    tests = yaml.safe_load((ROOT / "deploy/prometheus/alerts_test.yml").read_text())
    alerts = [rule for group in rules["groups"] for rule in group["rules"] if "alert" in rule]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case["alert_rule_test"]:
            (firing if check["exp_alerts"] else quiet).add(check["alertname"])
    for alert in alerts:
        annotations = alert["annotations"]
        assert {"summary", "description", "runbook", "runbook_url"} <= annotations.keys()
        assert alert["alert"] in firing, f"{alert['alert']} never tested firing"
        assert alert["alert"] in quiet, f"{alert['alert']} never tested not firing"
    docs = (ROOT / "docs/operations.md").read_text()
    for alert in alerts:
        assert f"### {alert['alert']}" in docs, f"{alert['alert']} not in docs/operations.md"


def test_upstream_crd_schemas_accept_the_shipped_resources() -> None:
    rule = yaml.safe_load((ROOT / "deploy/k8s/base/prometheusrule.yaml").read_text())
    assert checks.upstream_crd_errors([SERVICE, MONITOR, rule]) == []


def test_upstream_crd_schemas_reject_what_the_operator_would() -> None:
    bad_interval = copy.deepcopy(MONITOR)
    bad_interval["spec"]["endpoints"][0]["interval"] = "15 seconds"
    no_selector = copy.deepcopy(MONITOR)
    no_selector["metadata"]["name"] = "no-selector"
    del no_selector["spec"]["selector"]
    rule = yaml.safe_load((ROOT / "deploy/k8s/base/prometheusrule.yaml").read_text())
    rule["spec"]["groups"][0]["rules"] = "not a list"
    errors = checks.upstream_crd_errors([bad_interval, no_selector, rule])
    assert len(errors) == 3, errors
    assert "interval must match pattern" in errors[0]
    assert "no-selector" in errors[1] and "required property selector" in errors[1]
    assert "PrometheusRule" in errors[2] and "rules must be array" in errors[2]


def prod_overlay() -> list[dict[str, Any]]:
    """The prod overlay's documents, as kustomize renders them."""
    import subprocess

    kubectl = Path(sys.executable).parent / "kubectl"
    rendered = subprocess.run(
        [str(kubectl), "kustomize", str(ROOT / "deploy/k8s/overlays/prod")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return [doc for doc in yaml.safe_load_all(rendered) if doc]


def scaled(documents: list[dict[str, Any]], name: str) -> dict[str, Any]:
    return next(
        d for d in documents if d["kind"] == "ScaledObject" and d["metadata"]["name"] == name
    )


def test_the_shipped_keda_resources_pass_the_upstream_models_and_the_scaler_checks() -> None:
    documents = prod_overlay()
    kinds = [d["kind"] for d in documents]
    assert kinds.count("ScaledObject") == 4 and "HorizontalPodAutoscaler" not in kinds
    assert checks.keda_errors(documents) == []
    assert checks.upstream_crd_errors(documents) == []


def test_the_upstream_keda_model_rejects_a_numeric_value_but_not_a_bad_mode() -> None:
    documents = prod_overlay()
    numeric = copy.deepcopy(scaled(documents, "herald-scanner"))
    numeric["spec"]["triggers"][0]["metadata"]["value"] = 200
    bad_mode = copy.deepcopy(scaled(documents, "herald-generator"))
    bad_mode["spec"]["triggers"][0]["metadata"]["mode"] = "QueueDepth"

    upstream = checks.upstream_crd_errors([numeric, bad_mode])

    assert len(upstream) == 1 and "value must be string" in upstream[0]
    # What the models leave unchecked, ours catches.
    own = "\n".join(checks.keda_errors([*documents, bad_mode]))
    assert "mode 'QueueDepth' is not one of" in own


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m.update(mode="MessageRate"), "needs protocol 'http'"),
        (lambda m: m.update(queueName="herald.elsewhere"), "not a queue herald declares"),
        (lambda m: m.update(value="0"), "not a positive number"),
        (lambda m: m.update(queuLength="5"), "'queuLength' is not a RabbitMQ scaler setting"),
    ],
)
def test_the_scaler_settings_are_checked(change: Any, message: str) -> None:
    documents = prod_overlay()
    so = scaled(documents, "herald-notifier")
    change(so["spec"]["triggers"][0]["metadata"])

    assert message in "\n".join(checks.keda_errors(documents))


def test_a_scaled_deployment_that_an_hpa_also_scales_or_a_missing_secret_key_is_an_error() -> None:
    documents = prod_overlay()
    documents.append(
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": {"name": "cpu"},
            "spec": {"scaleTargetRef": {"kind": "Deployment", "name": "herald-generator"}},
        }
    )
    secret = next(d for d in documents if d["kind"] == "Secret")
    secret["stringData"].pop("AMQP_URL")

    errors = "\n".join(checks.keda_errors(documents))

    assert "an HPA also scales 'herald-generator'" in errors
    assert "no key 'AMQP_URL' in Secret 'herald-secrets'" in errors
