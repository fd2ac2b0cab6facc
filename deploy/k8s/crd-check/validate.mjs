// Validates prometheus-operator resources against the models generated from the upstream CRDs'
// openAPIV3Schema. Reads a JSON array of Kubernetes documents on stdin; prints one line per
// invalid resource and exits 1 when any is invalid. Other kinds are ignored.
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const MODELS = { PodMonitor, PrometheusRule, ServiceMonitor };

let input = "";
for await (const chunk of process.stdin) input += chunk;

let failed = 0;
let checked = 0;
for (const doc of JSON.parse(input)) {
  const Model = doc?.apiVersion === "monitoring.coreos.com/v1" ? MODELS[doc.kind] : undefined;
  if (!Model) continue;
  checked += 1;
  try {
    new Model(doc).validate();
  } catch (error) {
    failed += 1;
    console.log(`${doc.kind} ${doc.metadata?.name ?? "?"}: ${error.message}`);
  }
}
console.error(`checked ${checked} prometheus-operator resource(s), ${failed} invalid`);
process.exit(failed ? 1 : 0);
