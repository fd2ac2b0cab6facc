#!/usr/bin/env bash
# Offline validation of everything in deploy/ (run by `make lint`): no cluster, no Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# Run a command quietly; show its output only when it fails.
quiet() {
  local log
  if ! log=$("$@" 2>&1); then
    echo "$log" >&2
    echo "deploy: FAILED: $*" >&2
    return 1
  fi
}

for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  "$BIN/kubectl" kustomize "$overlay" > "$out/$name.yaml"
  # ServiceMonitor and PrometheusRule are prometheus-operator custom resources that
  # kubernetes-validate has no schema for: check_observability.py validates them against the
  # upstream CRD schemas and deploy/k8s/schemas/servicemonitor.json.
  "$BIN/kubernetes-validate" --strict --quiet --no-warn "$out/$name.yaml"
  echo "deploy: k8s overlay $name valid ($(grep -c '^kind:' "$out/$name.yaml") resources)"
done
"$BIN/python" deploy/check_observability.py servicemonitor "$out"/*.yaml
"$BIN/python" deploy/k8s/prometheusrule.py --check
echo "deploy: PrometheusRule matches alerts.yml"
"$BIN/hadolint" deploy/Dockerfile
echo "deploy: Dockerfile passes hadolint"
"$BIN/docker-compose" -f deploy/compose.yaml config -q
echo "deploy: compose.yaml valid"
"$BIN/yamllint" -s -c .yamllint.yaml deploy .yamllint.yaml
echo "deploy: YAML lint clean"

# Dashboards: generated from build_dashboards.py; every metric they and the alerts name exists.
"$BIN/python" deploy/grafana/build_dashboards.py --check
echo "deploy: dashboards current"
"$BIN/python" deploy/check_observability.py metrics

# promtool comes with Debian's `prometheus` package: `make lint` installs it, so CI always runs
# these; on a machine without it they are skipped, loudly (CI=1 or HERALD_REQUIRE_PROMTOOL=1
# make a missing promtool an error).
PROMTOOL=${PROMTOOL:-promtool}
if command -v "$PROMTOOL" >/dev/null 2>&1; then
  # rule_files in prometheus.yml are relative to it: alerts.yml next to it resolves here too.
  quiet "$PROMTOOL" check config deploy/prometheus/prometheus.yml
  echo "deploy: prometheus.yml valid (with its rule files)"
  quiet "$PROMTOOL" check rules deploy/prometheus/alerts.yml
  echo "deploy: alerts.yml valid"
  (cd deploy/prometheus && quiet "$PROMTOOL" test rules alerts_test.yml)
  echo "deploy: alert unit tests pass"
  quiet "$BIN/python" deploy/check_observability.py promql "$out/dashboards.rules.yml"
  quiet "$PROMTOOL" check rules "$out/dashboards.rules.yml"
  echo "deploy: every dashboard expression parses ($(grep -c 'record:' "$out/dashboards.rules.yml"))"
  "$BIN/python" deploy/check_observability.py exposition > "$out/exposition.txt"
  quiet "$PROMTOOL" check metrics < "$out/exposition.txt"
  echo "deploy: the services' metric families pass promtool check metrics"
elif [ -n "${CI:-}" ] || [ -n "${HERALD_REQUIRE_PROMTOOL:-}" ]; then
  echo "deploy: FAILED: promtool not found (apt-get install prometheus; .ci/run does)" >&2
  exit 1
else
  echo "deploy: ################################################################" >&2
  echo "deploy: SKIPPED promtool checks (config, rules, rule tests, dashboard PromQL," >&2
  echo "deploy: exposition): promtool not found. Install Debian's prometheus package" >&2
  echo "deploy: (apt-get install --no-install-recommends prometheus); CI runs them." >&2
  echo "deploy: ################################################################" >&2
fi
