"""deploy/ wires traces end to end: the services export to Tempo, Grafana reads it, Prometheus
keeps exemplars that open it, and the Kubernetes overlays name a collector."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from shared.tracing import check_protocol, wanted

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"


def load(path: str) -> Any:
    return yaml.safe_load((DEPLOY / path).read_text())


def test_compose_sends_every_service_s_spans_to_a_pinned_tempo_over_otlp_http() -> None:
    compose = load("compose.yaml")
    services = compose["services"]
    tempo = services["tempo"]
    image, _, tag = tempo["image"].partition(":")
    assert image == "grafana/tempo" and tag and tag != "latest"
    receiver = load("tempo/tempo.yaml")["distributor"]["receivers"]["otlp"]["protocols"]
    assert receiver["http"]["endpoint"].endswith(":4318")
    for name in ("api", "scheduler", "scanner", "generator", "notifier", "migrate"):
        env = {key: str(value) for key, value in services[name]["environment"].items()}
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://tempo:4318", name
        assert wanted(env), name
        check_protocol(env)
        assert "{trace_id}" in env["HERALD_TRACE_URL_TEMPLATE"], name
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]


def test_grafana_opens_an_exemplar_s_trace_in_the_provisioned_tempo() -> None:
    tempo = load("grafana/provisioning/datasources/tempo.yaml")["datasources"][0]
    prometheus = load("grafana/provisioning/datasources/prometheus.yaml")["datasources"][0]
    assert tempo["type"] == "tempo" and tempo["url"] == "http://tempo:3200"
    [destination] = prometheus["jsonData"]["exemplarTraceIdDestinations"]
    assert destination == {"name": "trace_id", "datasourceUid": tempo["uid"]}
    pipeline = yaml.safe_load((DEPLOY / "grafana/dashboards/pipeline.json").read_text())
    [link] = pipeline["links"]
    assert tempo["uid"] in link["url"]
    [duration] = [p for p in pipeline["panels"] if p["title"] == "Execution duration by status"]
    assert all(target["exemplar"] for target in duration["targets"])


def test_each_overlay_takes_its_collector_from_its_tracing_env() -> None:
    kubectl = Path(sys.executable).parent / "kubectl"
    for overlay in ("dev", "prod"):
        env = dict(
            line.split("=", 1)
            for line in (DEPLOY / f"k8s/overlays/{overlay}/tracing.env").read_text().splitlines()
            if line and not line.startswith("#")
        )
        built = subprocess.run(
            [str(kubectl), "kustomize", str(DEPLOY / f"k8s/overlays/{overlay}")],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        [config] = [
            doc
            for doc in yaml.safe_load_all(built)
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "herald-config"
        ]
        data = config["data"]
        assert data["OTEL_EXPORTER_OTLP_ENDPOINT"] == env["OTEL_EXPORTER_OTLP_ENDPOINT"], overlay
        assert wanted(data), overlay
        check_protocol(data)
        # The base's other settings survive the merge.
        assert data["HERALD_LOG_FORMAT"] == "json"
