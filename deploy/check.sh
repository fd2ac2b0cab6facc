#!/usr/bin/env bash
# Offline validation of everything in deploy/ (run by `make lint`): no cluster, no Docker engine.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${BIN:-.venv/bin}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

for overlay in deploy/k8s/overlays/*/; do
  name=$(basename "$overlay")
  "$BIN/kubectl" kustomize "$overlay" > "$out/$name.yaml"
  # ServiceMonitor is a prometheus-operator custom resource: kubernetes-validate has no schema.
  "$BIN/kubernetes-validate" --strict --quiet --no-warn "$out/$name.yaml"
  echo "deploy: k8s overlay $name valid ($(grep -c '^kind:' "$out/$name.yaml") resources)"
done
"$BIN/hadolint" deploy/Dockerfile && echo "deploy: Dockerfile passes hadolint"
"$BIN/docker-compose" -f deploy/compose.yaml config -q && echo "deploy: compose.yaml valid"
"$BIN/yamllint" -s -c .yamllint.yaml deploy .yamllint.yaml && echo "deploy: YAML lint clean"
