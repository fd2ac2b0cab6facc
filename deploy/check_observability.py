"""Offline checks of the dashboards and alerts against the code (run by deploy/check.sh).

    python deploy/check_observability.py promql OUT.yml   # dashboard exprs as recording rules
    python deploy/check_observability.py metrics          # every herald_ metric named exists
    python deploy/check_observability.py exposition       # all services' metrics, text format
    python deploy/check_observability.py servicemonitor RENDERED.yaml...

`promql` writes every dashboard expression (Grafana variables substituted) into a rules file
that `promtool check rules` then parses. `metrics` imports each service's composition root,
which registers its metrics in prometheus_client's default registry, derives the names the
exposition carries (counters `_total`, histograms `_bucket`/`_sum`/`_count`), and fails when a
dashboard or an alert names a `herald_` metric no service exposes, or a RabbitMQ metric that
the scrape configuration does not ask for. `servicemonitor` validates the prometheus-operator
resources of a rendered overlay (kubernetes-validate has no schema for custom resources) twice:
against the upstream CRD schemas, through the models @kubernetes-models/prometheus-operator
generates from them (deploy/k8s/crd-check, installed with `npm ci` on first use), and against
deploy/k8s/schemas/servicemonitor.json, which adds what the upstream schema leaves to the API
server's pruning: an unknown field (a typo) is an error, as with kubernetes-validate --strict.
It also checks that each endpoint's port is a named port of a Service the selector picks.
The same command validates KEDA's ScaledObjects and TriggerAuthentications against KEDA's
upstream CRD models (@kubernetes-models/keda), and adds what those leave unchecked: a RabbitMQ
trigger's metadata (string values, a known `mode`, `protocol: http` for the modes that need
the management API, a `queueName` herald declares, a positive `value`), that the scaled
Deployment and the referenced TriggerAuthentication and Secret key exist, and that no
HorizontalPodAutoscaler targets a Deployment KEDA scales.
"""

from __future__ import annotations

import fcntl
import importlib
import json
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
DASHBOARDS = ROOT / "deploy" / "grafana" / "dashboards"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
SERVICEMONITOR_SCHEMA = ROOT / "deploy" / "k8s" / "schemas" / "servicemonitor.json"
CRD_CHECK = ROOT / "deploy" / "k8s" / "crd-check"
SERVICES = ("api", "scheduler", "scanner", "generator", "notifier", "publisher")
# Grafana's built-in variables, replaced by what a query would get.
VARIABLES = {
    "$__rate_interval": "1m",
    "$__interval": "15s",
    "$__range": "1h",
    "${datasource}": "herald-prometheus",
    "$datasource": "herald-prometheus",
}
# rabbitmq_prometheus's detailed endpoint, families queue_coarse_metrics and
# queue_consumer_count (the `rabbitmq-queues` job of prometheus.yml), plus Prometheus's own `up`.
EXTERNAL = {
    "up",
    "rabbitmq_detailed_queue_messages",
    "rabbitmq_detailed_queue_messages_ready",
    "rabbitmq_detailed_queue_messages_unacked",
    "rabbitmq_detailed_queue_consumers",
}
NAME = re.compile(r"\b((?:herald|rabbitmq)_[A-Za-z0-9_]+|up)\b(?!\s*\()")


def dashboard_exprs() -> Iterator[tuple[str, str]]:
    """(where, expr) for every target of every panel."""
    for path in sorted(DASHBOARDS.glob("*.json")):
        board = json.loads(path.read_text())
        for panel in board["panels"]:
            for target in panel.get("targets", []):
                expr = target["expr"]
                for variable, value in VARIABLES.items():
                    expr = expr.replace(variable, value)
                yield f"{path.name}: {panel['title']}", expr


def alert_exprs() -> Iterator[tuple[str, str]]:
    rules = yaml.safe_load(ALERTS.read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            yield f"alerts.yml: {rule.get('alert') or rule.get('record')}", rule["expr"]


def write_promql_rules(out: Path) -> int:
    rules = [
        {"record": f"herald_dashboard:expr_{number}", "expr": expr}
        for number, (_where, expr) in enumerate(dashboard_exprs(), start=1)
    ]
    out.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    return len(rules)


def exposed_names() -> set[str]:
    """Every sample name the services' registries can expose."""
    for service in SERVICES:
        importlib.import_module(f"services.{service}.main")
    from prometheus_client import REGISTRY

    names: set[str] = set()
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
    }
    for family in REGISTRY.collect():
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ("",)))
        names.update(sample.name for sample in family.samples)
    return names


def named_metrics(expr: str) -> set[str]:
    # Label values and regexes are strings: drop them before looking for names.
    bare = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    return set(NAME.findall(bare))


def check_metrics() -> int:
    exposed = exposed_names() | EXTERNAL
    missing: list[str] = []
    count = 0
    for where, expr in [*dashboard_exprs(), *alert_exprs()]:
        for name in sorted(named_metrics(expr)):
            count += 1
            if name not in exposed:
                missing.append(f"{where}: {name}")
    if missing:
        print("metrics named but not exposed by any service:", *missing, sep="\n  ")
        return 1
    print(f"deploy: {count} metric references in dashboards and alerts all exposed")
    return 0


def servicemonitor_errors(documents: list[dict[str, Any]]) -> list[str]:
    """Schema errors and unmatched endpoint ports of the ServiceMonitors among `documents`."""
    from jsonschema import Draft202012Validator

    validator = Draft202012Validator(json.loads(SERVICEMONITOR_SCHEMA.read_text()))
    services = [doc for doc in documents if doc.get("kind") == "Service"]
    errors: list[str] = []
    for doc in documents:
        if doc.get("kind") != "ServiceMonitor":
            continue
        name = doc.get("metadata", {}).get("name", "?")
        for error in validator.iter_errors(doc):
            where = "/".join(str(part) for part in error.absolute_path)
            errors.append(f"ServiceMonitor {name}: {where}: {error.message}")
        spec = doc.get("spec") or {}
        wanted = (spec.get("selector") or {}).get("matchLabels") or {}
        namespace = doc.get("metadata", {}).get("namespace")
        picked = [
            service
            for service in services
            if service["metadata"].get("namespace") == namespace
            and wanted.items() <= (service["metadata"].get("labels") or {}).items()
        ]
        if not picked:
            errors.append(f"ServiceMonitor {name}: its selector picks no Service")
        ports = {port.get("name") for service in picked for port in service["spec"]["ports"]}
        for endpoint in spec.get("endpoints") or []:
            if "port" in endpoint and endpoint["port"] not in ports:
                errors.append(
                    f"ServiceMonitor {name}: no picked Service names a port {endpoint['port']}"
                )
    return errors


KEDA_MODES = {
    "QueueLength",
    "MessageRate",
    "DeliverGetRate",
    "PublishedToDeliveredRatio",
    "ExpectedQueueConsumptionTime",
}
RABBITMQ_KEYS = {
    "queueName",
    "mode",
    "value",
    "activationValue",
    "protocol",
    "host",
    "hostFromEnv",
    "usernameFromEnv",
    "passwordFromEnv",
    "vhostName",
    "unsafeSsl",
    "timeout",
    "excludeUnacknowledged",
    "useRegex",
    "pageSize",
    "operation",
}


def keda_errors(documents: list[dict[str, Any]]) -> list[str]:
    """What KEDA's CRD models do not check of herald's ScaledObjects."""
    from shared.topology import WORK_QUEUES

    def named(kind: str) -> dict[str, dict[str, Any]]:
        return {d["metadata"]["name"]: d for d in documents if d.get("kind") == kind}

    deployments, auths, secrets = (
        named("Deployment"),
        named("TriggerAuthentication"),
        named("Secret"),
    )
    autoscaled = {
        (d.get("spec") or {}).get("scaleTargetRef", {}).get("name")
        for d in documents
        if d.get("kind") == "HorizontalPodAutoscaler"
    }
    queues = {queue.name for queue in WORK_QUEUES}
    errors: list[str] = []
    for name, scaled in named("ScaledObject").items():
        spec = scaled.get("spec") or {}
        target = (spec.get("scaleTargetRef") or {}).get("name")
        if target not in deployments:
            errors.append(f"ScaledObject {name}: scales {target!r}, which is no Deployment here")
        if target in autoscaled:
            errors.append(f"ScaledObject {name}: an HPA also scales {target!r}; KEDA makes its own")
        for trigger in spec.get("triggers") or []:
            if trigger.get("type") != "rabbitmq":
                continue
            errors += [f"ScaledObject {name}: {e}" for e in _rabbitmq_errors(trigger, queues)]
            auth = (trigger.get("authenticationRef") or {}).get("name")
            if auth is None:
                continue
            if auth not in auths:
                errors.append(f"ScaledObject {name}: no TriggerAuthentication {auth!r}")
                continue
            for ref in (auths[auth].get("spec") or {}).get("secretTargetRef") or []:
                secret = secrets.get(ref.get("name"))
                data = {**(secret or {}).get("stringData", {}), **(secret or {}).get("data", {})}
                if ref.get("key") not in data:
                    errors.append(
                        f"TriggerAuthentication {auth}: no key {ref.get('key')!r} "
                        f"in Secret {ref.get('name')!r}"
                    )
    return errors


def _rabbitmq_errors(trigger: dict[str, Any], queues: set[str]) -> list[str]:
    metadata = trigger.get("metadata") or {}
    errors = [
        f"metadata {key!r} is not a string"
        for key, value in metadata.items()
        if not isinstance(value, str)
    ]
    errors += [
        f"metadata {key!r} is not a RabbitMQ scaler setting"
        for key in metadata.keys() - RABBITMQ_KEYS
    ]
    mode = metadata.get("mode")
    if mode not in KEDA_MODES:
        errors.append(f"mode {mode!r} is not one of {', '.join(sorted(KEDA_MODES))}")
    elif mode != "QueueLength" and metadata.get("protocol") != "http":
        errors.append(f"mode {mode} needs protocol 'http' (the management API)")
    if metadata.get("queueName") not in queues:
        errors.append(f"queueName {metadata.get('queueName')!r} is not a queue herald declares")
    try:
        if float(metadata.get("value", "")) <= 0:
            raise ValueError
    except (TypeError, ValueError):
        errors.append(f"value {metadata.get('value')!r} is not a positive number")
    if not (trigger.get("authenticationRef") or "host" in metadata or "hostFromEnv" in metadata):
        errors.append("no broker address: an authenticationRef, host or hostFromEnv")
    return errors


def install_crd_check() -> str:
    """`npm ci` the pinned upstream models unless installed as locked; return node's path."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        raise SystemExit("deploy: node and npm are needed to check custom resources")
    lock = CRD_CHECK / "package-lock.json"
    installed = CRD_CHECK / "node_modules" / ".package-lock.json"
    # Parallel test workers may get here at once; one installs, the others wait and reuse it.
    with (CRD_CHECK / ".install.lock").open("w") as guard:
        fcntl.flock(guard, fcntl.LOCK_EX)
        if installed.exists() and installed.stat().st_mtime >= lock.stat().st_mtime:
            return node
        subprocess.run(  # noqa: S603 - fixed arguments
            [npm, "ci", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=CRD_CHECK,
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return node


def upstream_crd_errors(documents: list[dict[str, Any]]) -> list[str]:
    """Errors of the custom resources among `documents` under their upstream CRD models."""
    node = install_crd_check()
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [node, str(CRD_CHECK / "validate.mjs")],
        input=json.dumps(documents),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 1):
        raise SystemExit(f"deploy: the CRD check itself failed:\n{result.stderr}")
    return [f"upstream CRD: {line}" for line in result.stdout.splitlines() if line]


def check_servicemonitors(paths: list[str]) -> int:
    failed = 0
    for path in paths:
        documents = [doc for doc in yaml.safe_load_all(Path(path).read_text()) if doc]
        errors = (
            servicemonitor_errors(documents)
            + keda_errors(documents)
            + upstream_crd_errors(documents)
        )
        for error in errors:
            print(f"{path}: {error}")
        failed += bool(errors)
        kinds = ("ServiceMonitor", "PrometheusRule", "ScaledObject", "TriggerAuthentication")
        count = sum(doc.get("kind") in kinds for doc in documents)
        if not errors:
            print(
                f"deploy: {Path(path).name}: {count} custom resource(s) valid "
                "(upstream CRD schemas, strict fields, KEDA scaler settings)"
            )
    return 1 if failed else 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["promql"] and len(argv) == 2:
        print(f"deploy: {write_promql_rules(Path(argv[1]))} dashboard expressions written")
        return 0
    if argv == ["metrics"]:
        return check_metrics()
    if argv == ["exposition"]:
        exposed_names()
        from prometheus_client import REGISTRY, generate_latest

        sys.stdout.write(generate_latest(REGISTRY).decode())
        return 0
    if argv[:1] == ["servicemonitor"] and len(argv) > 1:
        return check_servicemonitors(argv[1:])
    print(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
