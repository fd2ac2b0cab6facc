"""Wrap deploy/prometheus/alerts.yml in a PrometheusRule for the prometheus-operator.

`python deploy/k8s/prometheusrule.py` rewrites deploy/k8s/base/prometheusrule.yaml;
`--check` fails when that file does not hold exactly the groups of alerts.yml.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
TARGET = ROOT / "deploy" / "k8s" / "base" / "prometheusrule.yaml"
HEADER = "# Generated from deploy/prometheus/alerts.yml by deploy/k8s/prometheusrule.py.\n"


def render() -> str:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    resource = {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PrometheusRule",
        "metadata": {"name": "herald", "labels": {"app.kubernetes.io/name": "herald"}},
        "spec": {"groups": groups},
    }
    return HEADER + yaml.safe_dump(resource, sort_keys=False, width=100, allow_unicode=True)


def main() -> int:
    text = render()
    if "--check" in sys.argv[1:]:
        if TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python deploy/k8s/prometheusrule.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
