// Validates Kubernetes manifests against the published CRD schemas of Strimzi and the Flink Kubernetes Operator,
// as the @kubernetes-models packages ship them (pinned in package.json / package-lock.json).
// Usage: node validate.mjs FILE.yaml ...   Prints one line per document; exits 1 if any is invalid or unknown.
import { readFileSync } from "node:fs";
import yaml from "js-yaml";
import * as strimzi from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2";
import * as flink from "@kubernetes-models/flink/flink.apache.org/v1beta1";

const models = {
  "kafka.strimzi.io/v1beta2": strimzi,
  "flink.apache.org/v1beta1": flink,
};

let failed = 0;
for (const file of process.argv.slice(2)) {
  for (const doc of yaml.loadAll(readFileSync(file, "utf8"))) {
    if (!doc) continue;
    const where = `${file}: ${doc.kind ?? "?"} ${doc.metadata?.name ?? "?"}`;
    const Model = models[doc.apiVersion]?.[doc.kind];
    if (!Model) {
      // core Kubernetes objects (ConfigMap, Secret) are not checked here
      if (doc.apiVersion === "v1") { console.log(`SKIP ${where} (core ${doc.kind})`); continue; }
      console.log(`UNKNOWN ${where} (${doc.apiVersion})`);
      failed++;
      continue;
    }
    try {
      new Model(doc).validate();
      console.log(`OK ${where}`);
    } catch (e) {
      failed++;
      const details = (e.errors ?? []).map((x) => `${x.instancePath || "/"} ${x.message}`).join("; ");
      console.log(`INVALID ${where}: ${details || e.message}`);
    }
  }
}
process.exit(failed ? 1 : 0);
