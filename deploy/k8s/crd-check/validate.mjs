// Validates herald's custom resources against models generated from the upstream CRDs'
// openAPIV3Schema: prometheus-operator's (ServiceMonitor, PrometheusRule, PodMonitor) and
// KEDA's (ScaledObject, TriggerAuthentication). Reads a JSON array of Kubernetes documents on
// stdin; prints one line per invalid resource and exits 1 when any is invalid. Other kinds are
// ignored. KEDA's models leave a trigger's metadata unchecked: check_observability.py checks
// the RabbitMQ scaler's.
import { ScaledObject } from "@kubernetes-models/keda/keda.sh/v1alpha1/ScaledObject";
import { TriggerAuthentication } from "@kubernetes-models/keda/keda.sh/v1alpha1/TriggerAuthentication";
import { PodMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PodMonitor";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";

const MODELS = {
  "monitoring.coreos.com/v1": { PodMonitor, PrometheusRule, ServiceMonitor },
  "keda.sh/v1alpha1": { ScaledObject, TriggerAuthentication },
};

let input = "";
for await (const chunk of process.stdin) input += chunk;

let failed = 0;
let checked = 0;
for (const doc of JSON.parse(input)) {
  const Model = MODELS[doc?.apiVersion]?.[doc?.kind];
  if (!Model) continue;
  checked += 1;
  try {
    new Model(doc).validate();
  } catch (error) {
    failed += 1;
    console.log(`${doc.kind} ${doc.metadata?.name ?? "?"}: ${error.message}`);
  }
}
console.error(`checked ${checked} custom resource(s), ${failed} invalid`);
process.exit(failed ? 1 : 0);
