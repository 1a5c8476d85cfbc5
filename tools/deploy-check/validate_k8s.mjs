// validate_k8s.mjs - every Kubernetes object in the given YAML files (or on
// stdin with "-", e.g. the output of `kubectl kustomize`) is checked against
// the Kubernetes OpenAPI schemas carried by npm kubernetes-models. Files whose
// documents have kind Kustomization are skipped (kustomize's own format).
// Exit 1 with every error listed; 0 prints what was checked.
//   node tools/deploy-check/validate_k8s.mjs deploy/k8s/base/*.yaml
import { readFileSync } from "node:fs";
import { parseAllDocuments } from "yaml";

function modulePath(apiVersion) {
  // "apps/v1" -> kubernetes-models/apps/v1; core "v1" -> kubernetes-models/v1
  const parts = apiVersion.split("/");
  return parts.length === 1 ? `kubernetes-models/${parts[0]}`
                            : `kubernetes-models/${parts[0]}/${parts[1]}`;
}

async function check(doc, where, errors) {
  if (!doc || typeof doc !== "object") return errors.push(`${where}: not a mapping`);
  const { apiVersion, kind } = doc;
  if (!apiVersion || !kind) return errors.push(`${where}: no apiVersion/kind`);
  if (kind === "Kustomization") return "skipped";
  if (!doc.metadata || !doc.metadata.name) errors.push(`${where}: ${kind} without metadata.name`);
  let mod;
  try {
    mod = await import(modulePath(apiVersion));
  } catch {
    return errors.push(`${where}: unknown apiVersion ${apiVersion}`);
  }
  const Model = mod[kind];
  if (!Model) return errors.push(`${where}: unknown kind ${kind} in ${apiVersion}`);
  try {
    new Model(doc).validate();
  } catch (e) {
    return errors.push(`${where}: ${kind} ${doc.metadata?.name}: ${e.message}`);
  }
  return `${apiVersion} ${kind} ${doc.metadata.name}`;
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error("usage: validate_k8s.mjs FILE.yaml... | -");
  process.exit(2);
}
const errors = [];
let checked = 0;
for (const f of files) {
  const text = readFileSync(f === "-" ? 0 : f, "utf8");
  const docs = parseAllDocuments(text);
  for (const [i, d] of docs.entries()) {
    const where = `${f === "-" ? "stdin" : f}#${i}`;
    if (d.errors.length) { errors.push(`${where}: YAML: ${d.errors[0].message}`); continue; }
    const js = d.toJS();
    if (js === null) continue;  // an empty document (a file of comments)
    const r = await check(js, where, errors);
    if (typeof r === "string" && r !== "skipped") { checked++; console.log(`ok ${r}`); }
  }
}
for (const e of errors) console.error(`FAIL ${e}`);
if (errors.length) process.exit(1);
if (checked === 0) { console.error("FAIL no Kubernetes object found"); process.exit(1); }
console.log(`${checked} objects valid`);
