"""The offline deploy checks catch what they claim to (deploy/check_observability.py)."""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

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
