// validate_k8s.mjs - every Kubernetes object in the given YAML files (or on
// stdin with "-", e.g. the output of `kubectl kustomize`) is checked against
// the Kubernetes OpenAPI schemas carried by npm kubernetes-models. Files whose
// documents have kind Kustomization are skipped (kustomize's own format).
// Exit 1 with every error listed; 0 prints what was checked.
//   node tools/deploy-check/validate_k8s.mjs deploy/k8s/base/*.yaml
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { parseAllDocuments } from "yaml";

const MODULES = join(dirname(fileURLToPath(import.meta.url)), "node_modules");

// The schemas of kubernetes-models accept fields they do not know (the API
// server would reject them, or drop them with a warning: a typo such as
// `replica:` would go unnoticed). The package's type declarations list every
// field of every object: unknown fields are looked up there, recursively.
const interfaces = new Map();  // .d.ts path -> {fields: Map(name -> [d.ts paths of its type])}
function readDts(file) {
  if (interfaces.has(file)) return interfaces.get(file);
  const text = readFileSync(file, "utf8");
  const imports = new Map();
  for (const m of text.matchAll(/^import \{ ([^}]+) \} from "([^"]+)";$/gm)) {
    let target = m[2];
    target = target.startsWith(".") ? resolve(dirname(file), target)
                                    : join(MODULES, target);
    target = target.replace(/\.js$/, "") + ".d.ts";
    for (const name of m[1].split(",").map((x) => x.trim())) imports.set(name, target);
  }
  const body = text.match(/^export interface \w+(?: extends [\w, ]+)? \{\n([\s\S]*?)^\}/m);
  const fields = new Map();
  if (body) {
    for (const m of body[1].matchAll(/^ {4}"([^"]+)"\??: ([^\n]*)$/gm)) {
      const refs = [...m[2].matchAll(/\b(I\w+)\b/g)].map((r) => imports.get(r[1]))
        .filter((t) => t && existsSync(t));
      fields.set(m[1], refs);
    }
  }
  const out = body ? { fields } : null;  // a type alias (IntOrString, Quantity): not checked
  interfaces.set(file, out);
  return out;
}

function strictFields(value, dts, path, errors) {
  if (value === null || typeof value !== "object") return;
  if (Array.isArray(value)) {
    value.forEach((v, i) => strictFields(v, dts, `${path}[${i}]`, errors));
    return;
  }
  const iface = readDts(dts);
  if (!iface) return;
  for (const [k, v] of Object.entries(value)) {
    if (!iface.fields.has(k)) {
      errors.push(`${path}.${k}: unknown field`);
      continue;
    }
    for (const ref of iface.fields.get(k)) strictFields(v, ref, `${path}.${k}`, errors);
  }
}

function topDts(apiVersion, kind) {
  const parts = apiVersion.split("/");
  return join(MODULES, "kubernetes-models", ...parts, `${kind}.d.ts`);
}

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
  const unknown = [];
  strictFields(doc, topDts(apiVersion, kind), kind, unknown);
  if (unknown.length) return errors.push(...unknown.map((u) => `${where}: ${u}`));
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
