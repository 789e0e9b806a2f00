// Offline checks of one set of Kubernetes documents (the plain manifests in k8s/, or one `helm template` render):
//   1. every document against the Kubernetes API schema of its kind (kubernetes-models; ServiceMonitor through
//      @kubernetes-models/prometheus-operator), plus unknown fields, which those schemas let pass: the field lists
//      are read from the packages' type declarations, so a misspelt key (`readinesProbe`) fails here as it would
//      with `kubectl apply --validate=strict`;
//   2. cross-checks of the ecsnet deployment contract (selectors, ports, probes, discovery, RBAC, GPUs, shutdown).
//
// node validate.mjs --modules DIR [--name LABEL] [--complete] [--expect-variant cpu|cuda] [--expect-workers N]
//                   [--expect-gpus N] [--image-ports P,P,...] FILE...
//   --modules DIR    the node_modules folder that k8s/check.sh installed from package-lock.json
//   --complete       every Secret, ConfigMap and PVC the pods name must be in the set (plain manifests)
//   --image-ports    the ports the images EXPOSE (k8s/check/dockerfile.mjs): the pods' container ports, all
//                    workloads together, must be exactly these
// Exit code 0 when everything passed, 1 when a check failed, 2 on bad usage.

import { readFileSync, existsSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";

// ---------------------------------------------------------------------------------------------------------------
// Command line

function parseArgs(argv) {
  const o = { modules: null, name: null, complete: false, variant: null, workers: null, gpus: null, imagePorts: null, files: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const next = () => {
      if (i + 1 >= argv.length) usage(`${a} needs a value`);
      return argv[++i];
    };
    if (a === "--modules") o.modules = next();
    else if (a === "--name") o.name = next();
    else if (a === "--complete") o.complete = true;
    else if (a === "--expect-variant") o.variant = next();
    else if (a === "--expect-workers") o.workers = Number(next());
    else if (a === "--expect-gpus") o.gpus = Number(next());
    else if (a === "--image-ports") o.imagePorts = next().split(",").filter(Boolean).map(Number);
    else if (a.startsWith("--")) usage(`unknown option ${a}`);
    else o.files.push(a);
  }
  if (!o.modules) usage("--modules is required");
  if (o.files.length === 0) usage("no files");
  if (o.variant && !["cpu", "cuda"].includes(o.variant)) usage("--expect-variant is cpu or cuda");
  if (o.imagePorts && (o.imagePorts.length === 0 || o.imagePorts.some(p => !Number.isInteger(p) || p < 1 || p > 65535)))
    usage("--image-ports is a comma-separated list of port numbers");
  o.name ??= o.files.join(" ");
  return o;
}

function usage(msg) {
  console.error(`validate.mjs: ${msg}`);
  process.exit(2);
}

const opts = parseArgs(process.argv.slice(2));

// ---------------------------------------------------------------------------------------------------------------
// Loading the packages from the cache folder. They are ES modules whose package.json "exports" map subpaths to
// files; ESM resolution only looks in node_modules folders above the importing file, so this resolves by hand.

function splitSpecifier(spec) {
  const parts = spec.split("/");
  const n = spec.startsWith("@") ? 2 : 1;
  return { pkg: parts.slice(0, n).join("/"), sub: parts.length > n ? "./" + parts.slice(n).join("/") : "." };
}

function pickTarget(entry, conditions) {
  if (typeof entry === "string") return entry;
  if (entry && typeof entry === "object") {
    for (const c of conditions) if (c in entry) return pickTarget(entry[c], conditions);
  }
  return null;
}

// The file an import specifier names, for the given export conditions; null when the package does not export it.
function resolvePackageFile(spec, conditions) {
  const { pkg, sub } = splitSpecifier(spec);
  const root = join(opts.modules, pkg);
  const exportsMap = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).exports ?? {};
  if (sub in exportsMap) {
    const t = pickTarget(exportsMap[sub], conditions);
    return t ? join(root, t) : null;
  }
  for (const [key, value] of Object.entries(exportsMap)) {
    const star = key.indexOf("*");
    if (star < 0) continue;
    const head = key.slice(0, star);
    const tail = key.slice(star + 1);
    if (sub.startsWith(head) && sub.endsWith(tail) && sub.length >= head.length + tail.length) {
      const t = pickTarget(value, conditions);
      return t ? join(root, t.replace("*", sub.slice(head.length, sub.length - tail.length))) : null;
    }
  }
  return null;
}

async function load(spec) {
  const file = resolvePackageFile(spec, ["node", "import", "default"]);
  if (!file || !existsSync(file)) return null;
  return import(pathToFileURL(file).href);
}

const YAML = await load("yaml");
if (!YAML) usage(`the yaml package is not in ${opts.modules}`);

// Models by apiVersion: the core and built-in groups, then the prometheus-operator CRDs.
const MODEL_PACKAGES = ["kubernetes-models", "@kubernetes-models/prometheus-operator"];

async function findModel(apiVersion, kind) {
  for (const pkg of MODEL_PACKAGES) {
    const spec = `${pkg}/${apiVersion}`;
    let mod = null;
    try {
      mod = await load(spec);
    } catch {
      mod = null;
    }
    if (mod && typeof mod[kind] === "function") {
      return { Model: mod[kind], declaration: resolvePackageFile(`${spec}/${kind}`, ["types"]) };
    }
  }
  return null;
}

// ---------------------------------------------------------------------------------------------------------------
// Field lists from the type declarations: each model file declares `class X extends Model<IX> implements IX`
// whose body lists every field (inherited ones included) with its type; nested types are imported by name.

const declarationCache = new Map();

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, "").replace(/^\s*\/\/.*$/gm, "");
}

// The text from `open` (an index of "{") to its matching "}".
function block(text, open) {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    if (text[i] === "{") depth++;
    else if (text[i] === "}" && --depth === 0) return text.slice(open + 1, i);
  }
  return text.slice(open + 1);
}

// `"name"?: Type;` members at the top level of a class or interface body.
function members(body) {
  const out = new Map();
  let i = 0;
  while (i < body.length) {
    const m = /^\s*"([^"]+)"\??\s*:\s*/.exec(body.slice(i));
    if (!m) {
      // not a field (static, constructor, index signature): skip to the next ";" at this level
      let depth = 0;
      for (; i < body.length; i++) {
        const c = body[i];
        if ("{<([".includes(c)) depth++;
        else if ("}>)]".includes(c)) depth--;
        else if (c === ";" && depth === 0) { i++; break; }
      }
      continue;
    }
    i += m[0].length;
    let depth = 0;
    const start = i;
    for (; i < body.length; i++) {
      const c = body[i];
      if ("{<([".includes(c)) depth++;
      else if ("}>)]".includes(c)) depth--;
      else if (c === ";" && depth === 0) break;
    }
    out.set(m[1], body.slice(start, i).replace(/\s+/g, " ").trim());
    i++;
  }
  return out;
}

function parseDeclaration(file) {
  if (declarationCache.has(file)) return declarationCache.get(file);
  const info = { file, imports: new Map(), aliases: new Map(), classes: new Map() };
  declarationCache.set(file, info);
  if (!file || !existsSync(file)) return info;
  const text = stripComments(readFileSync(file, "utf8"));
  for (const m of text.matchAll(/import\s*\{([^}]*)\}\s*from\s*"([^"]+)"/g)) {
    for (const name of m[1].split(",").map(s => s.trim()).filter(Boolean)) {
      const local = name.split(/\s+as\s+/).pop();
      info.imports.set(local, m[2]);
    }
  }
  for (const m of text.matchAll(/export\s+type\s*\{([^}]*)\}/g)) {
    for (const pair of m[1].split(",")) {
      const [from, as] = pair.split(/\s+as\s+/).map(s => s.trim());
      if (from && as) info.aliases.set(as, from);
    }
  }
  for (const m of text.matchAll(/export\s+declare\s+class\s+(\w+)[^{]*?implements\s+(\w+)\s*\{/g)) {
    const body = block(text, m.index + m[0].length - 1);
    info.classes.set(m[2], members(body));
  }
  return info;
}

function importedFile(fromFile, spec) {
  if (spec.startsWith(".")) return join(dirname(fromFile), spec.replace(/\.js$/, ".d.ts"));
  return resolvePackageFile(spec, ["types"]);
}

// A type reference: { fields: Map|null, file } for an object type, or a wrapper for arrays and maps.
function typeOf(typeText, file) {
  const t = typeText.replace(/\s*\|\s*null$/, "").trim();
  let m = /^Array<(.+)>$/.exec(t);
  if (m) return { array: typeOf(m[1], file) };
  m = /^\{ \[key: string\]: (.+?);? \}$/.exec(t);
  if (m) return { map: typeOf(m[1], file) };
  if (!/^\w+$/.test(t)) return null;
  const info = parseDeclaration(file);
  if (info.classes.has(t)) return { fields: info.classes.get(t), file };
  const spec = info.imports.get(t);
  if (!spec) return null;
  const target = parseDeclaration(importedFile(file, spec));
  const local = target.aliases.get(t) ?? t;
  return target.classes.has(local) ? { fields: target.classes.get(local), file: target.file } : null;
}

function kindType(declarationFile, kind) {
  const info = parseDeclaration(declarationFile);
  const fields = info.classes.get("I" + kind);
  return fields ? { fields, file: declarationFile } : null;
}

// Paths of fields the schema does not know, below `value` of type `type`.
function unknownFields(value, type, path, out) {
  if (!type || value === null || value === undefined) return out;
  if (type.array) {
    if (Array.isArray(value)) value.forEach((v, i) => unknownFields(v, type.array, `${path}[${i}]`, out));
    return out;
  }
  if (type.map) {
    if (value && typeof value === "object") for (const [k, v] of Object.entries(value)) unknownFields(v, type.map, `${path}.${k}`, out);
    return out;
  }
  if (type.fields && value && typeof value === "object" && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) {
      if (!type.fields.has(k)) out.push(`${path}.${k}`);
      else unknownFields(v, typeOf(type.fields.get(k), type.file), `${path}.${k}`, out);
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Reporting

let failures = 0;
let passes = 0;
const say = line => console.log(`  ${line}`);
function pass(msg) {
  passes++;
  say(`ok    ${msg}`);
}
function fail(msg) {
  failures++;
  say(`FAIL  ${msg}`);
}
function check(cond, okMsg, failMsg) {
  if (cond) pass(okMsg);
  else fail(failMsg ?? okMsg);
  return cond;
}
const info = msg => say(`note  ${msg}`);

// ---------------------------------------------------------------------------------------------------------------
// Reading the documents

console.log(`== ${opts.name}`);
const docs = [];
for (const file of opts.files) {
  const text = readFileSync(file === "-" ? 0 : file, "utf8");
  for (const d of YAML.parseAllDocuments(text)) {
    if (d.errors.length) {
      fail(`${file}: YAML: ${d.errors.map(e => e.message).join("; ")}`);
      continue;
    }
    const obj = d.toJS();
    if (obj === null || obj === undefined) continue;
    docs.push({ file, obj });
  }
}
check(docs.length > 0, `${docs.length} documents read`, "no documents");

const id = o => `${o.kind}/${o.metadata?.name ?? "?"}`;

// 1. Schemas and unknown fields.
for (const { file, obj } of docs) {
  if (typeof obj !== "object" || Array.isArray(obj) || !obj.apiVersion || !obj.kind) {
    fail(`${file}: a document without apiVersion and kind`);
    continue;
  }
  const found = await findModel(obj.apiVersion, obj.kind);
  if (!found) {
    fail(`${id(obj)}: no schema for ${obj.apiVersion} ${obj.kind}`);
    continue;
  }
  let problems = [];
  try {
    new found.Model(obj).validate();
  } catch (e) {
    problems = (e.errors ?? [{ instancePath: "", message: e.message }]).map(x => `${x.instancePath || "/"} ${x.message}`);
  }
  const type = kindType(found.declaration, obj.kind);
  if (!type) problems.push(`(no field list for ${obj.kind} in ${found.declaration})`);
  else for (const p of unknownFields(obj, type, "", [])) problems.push(`${p}: unknown field`);
  if (!obj.metadata?.name) problems.push("metadata.name missing");
  if (problems.length) fail(`schema ${obj.apiVersion} ${id(obj)}: ${problems.join("; ")}`);
  else pass(`schema ${obj.apiVersion} ${id(obj)}`);
}

// ---------------------------------------------------------------------------------------------------------------
// 2. Cross-checks

const objs = docs.map(d => d.obj).filter(o => o && o.kind);
const ofKind = k => objs.filter(o => o.kind === k);
const named = (k, n) => objs.find(o => o.kind === k && o.metadata?.name === n);
const WORKLOAD_KINDS = ["StatefulSet", "Deployment", "DaemonSet", "ReplicaSet", "Job"];
const workloads = objs.filter(o => WORKLOAD_KINDS.includes(o.kind) && o.spec?.template);
const podLabels = w => w.spec.template.metadata?.labels ?? {};
const component = w => podLabels(w)["app.kubernetes.io/component"];

function matchesLabels(selector, labels) {
  if (!selector || typeof selector !== "object") return false;
  const matchLabels = selector.matchLabels ?? (selector.matchExpressions ? {} : selector);
  const entries = Object.entries(matchLabels);
  const exprs = selector.matchExpressions ?? [];
  if (entries.length === 0 && exprs.length === 0) return false; // an empty selector is refused here
  for (const [k, v] of entries) if (labels[k] !== v) return false;
  for (const e of exprs) {
    const has = e.key in labels;
    if (e.operator === "In" && !(has && e.values.includes(labels[e.key]))) return false;
    if (e.operator === "NotIn" && has && e.values.includes(labels[e.key])) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

const LABEL_NAME = "app.kubernetes.io/name";
const LABEL_INSTANCE = "app.kubernetes.io/instance";

// Labels and namespace of every object.
{
  const instances = new Set(objs.map(o => o.metadata?.labels?.[LABEL_INSTANCE]));
  const unlabelled = objs.filter(o => o.metadata?.labels?.[LABEL_NAME] !== "ecsnet" || !o.metadata?.labels?.[LABEL_INSTANCE]);
  check(unlabelled.length === 0, `every object labelled ${LABEL_NAME}=ecsnet and ${LABEL_INSTANCE}`,
    `objects without ${LABEL_NAME}=ecsnet / ${LABEL_INSTANCE}: ${unlabelled.map(id).join(", ")}`);
  check(instances.size === 1, `one instance label across the set (${[...instances].join(", ")})`,
    `several instance labels: ${[...instances].join(", ")}`);
  const namespaced = objs.filter(o => !["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(o.kind));
  const namespaces = new Set(namespaced.map(o => o.metadata?.namespace ?? "(none)"));
  check(namespaces.size === 1, `namespaced objects share one namespace (${[...namespaces].join(", ")})`,
    `namespaced objects in several namespaces: ${[...namespaces].join(", ")}`);
  const ns = ofKind("Namespace")[0];
  if (ns) check(namespaces.has(ns.metadata.name), `the Namespace ${ns.metadata.name} is the objects' namespace`);
}

check(workloads.some(w => component(w) === "coordinator"), "a coordinator workload", "no workload with component=coordinator");
check(workloads.some(w => component(w) === "worker"), "a worker workload", "no workload with component=worker");
for (const w of workloads) {
  const c = component(w);
  check(["coordinator", "worker"].includes(c), `${id(w)}: component ${c}`, `${id(w)}: component label '${c}' is not coordinator|worker`);
  check(podLabels(w)[LABEL_NAME] === "ecsnet" && !!podLabels(w)[LABEL_INSTANCE],
    `${id(w)}: pod template labelled ${LABEL_NAME}/${LABEL_INSTANCE}`);
}

// Akka.Management's HTTP endpoint (8558, a port named 'management') is gone: cluster formation lists the pods through
// the Kubernetes API and joins them on their remoting port. Nothing may still declare, name or mention it.
{
  const mentions = objs.filter(o => /(^|[^0-9])8558([^0-9]|$)/.test(JSON.stringify(o)));
  check(mentions.length === 0, "8558 (Akka.Management) appears nowhere", `8558 (Akka.Management, not used) appears in ${mentions.map(id).join(", ")}`);
  const managementPorts = objs.flatMap(o => [
    ...(o.kind === "Service" ? o.spec?.ports ?? [] : []),
    ...(o.spec?.template?.spec?.containers ?? []).flatMap(c => c.ports ?? []),
  ].filter(p => p.name === "management").map(() => id(o)));
  check(managementPorts.length === 0, "no port named 'management'", `a port named 'management' (Akka.Management, not used) in ${[...new Set(managementPorts)].join(", ")}`);
}

// Services
const services = ofKind("Service");
// The cluster's headless Service: the one the StatefulSets name (a metrics Service may be headless too).
const headless = services.filter(s => s.spec?.clusterIP === "None" &&
  workloads.some(w => w.kind === "StatefulSet" && w.spec.serviceName === s.metadata?.name));
for (const s of services) {
  const sel = s.spec?.selector;
  const targets = workloads.filter(w => sel && matchesLabels(sel, podLabels(w)));
  if (!check(targets.length > 0, `${id(s)}: selector matches ${targets.map(id).join(", ")}`,
    `${id(s)}: selector ${JSON.stringify(sel)} matches no pod template`)) continue;
  for (const p of s.spec.ports ?? []) {
    const tp = p.targetPort ?? p.port;
    const missing = targets.filter(w => !containerPort(mainContainer(w), tp));
    check(missing.length === 0, `${id(s)}: port ${p.name ?? p.port} → ${tp} is declared by every selected pod`,
      `${id(s)}: port ${p.name ?? p.port} → ${tp} is not declared by ${missing.map(id).join(", ")}`);
  }
}
check(headless.length === 1, `one headless Service for the StatefulSets (${headless.map(id).join(", ")})`, `${headless.length} headless Services named by the StatefulSets (want 1)`);
for (const h of headless) {
  const comps = new Set(workloads.filter(w => matchesLabels(h.spec.selector, podLabels(w))).map(component));
  check(comps.has("coordinator") && comps.has("worker"), `${id(h)}: selects coordinator and worker pods`,
    `${id(h)}: selects only ${[...comps].join(", ")}`);
  check(h.spec.publishNotReadyAddresses === true, `${id(h)}: publishNotReadyAddresses`);
  const ports = (h.spec.ports ?? []).map(p => p.port);
  const remoting = (h.spec.ports ?? []).find(p => p.port === 4053);
  check(remoting?.name === "remoting" && (remoting.targetPort ?? 4053) === "remoting",
    `${id(h)}: port 4053 'remoting' → the pods' port 'remoting'`,
    `${id(h)}: ports ${ports.join(", ")}: no port 4053 named 'remoting' with targetPort 'remoting'`);
}
const control = services.filter(s => s.spec?.clusterIP !== "None" && s.spec?.selector?.["app.kubernetes.io/component"] === "coordinator");
if (check(control.length === 1, `a ClusterIP Service for the coordinator (${control.map(id).join(", ")})`, `${control.length} ClusterIP Services select the coordinator (want 1)`)) {
  const ports = (control[0].spec.ports ?? []).map(p => p.port);
  check(ports.includes(4060) && ports.includes(8080), `${id(control[0])}: ports 4060 and 8080`, `${id(control[0])}: ports ${ports.join(", ")}`);
  check(/-control$/.test(control[0].metadata.name), `${id(control[0])}: named <release>-control`);
}

// StatefulSets
for (const w of workloads.filter(w => w.kind === "StatefulSet")) {
  check(matchesLabels(w.spec.selector, podLabels(w)), `${id(w)}: selector matches its template labels`,
    `${id(w)}: selector ${JSON.stringify(w.spec.selector)} does not match template labels ${JSON.stringify(podLabels(w))}`);
  const svc = services.find(s => s.metadata.name === w.spec.serviceName);
  check(svc && svc.spec.clusterIP === "None" && matchesLabels(svc.spec.selector, podLabels(w)),
    `${id(w)}: serviceName ${w.spec.serviceName} is a headless Service selecting its pods`,
    `${id(w)}: serviceName '${w.spec.serviceName}' is not a headless Service of this set that selects its pods`);
}

// PodDisruptionBudgets
const pdbs = ofKind("PodDisruptionBudget");
for (const comp of ["coordinator", "worker"]) {
  const ws = workloads.filter(w => component(w) === comp);
  const covering = pdbs.filter(p => ws.some(w => matchesLabels(p.spec?.selector, podLabels(w))));
  check(covering.length === 1, `${comp}: one PodDisruptionBudget (${covering.map(id).join(", ")})`,
    `${comp}: ${covering.length} PodDisruptionBudgets select its pods (want 1)`);
}
for (const p of pdbs) {
  const ws = workloads.filter(w => matchesLabels(p.spec?.selector, podLabels(w)));
  check(ws.length > 0, `${id(p)}: selects ${ws.map(id).join(", ")}`, `${id(p)}: selects no pod template`);
  if (ws.some(w => component(w) === "worker")) check(p.spec.maxUnavailable === 1, `${id(p)}: maxUnavailable 1`, `${id(p)}: maxUnavailable ${p.spec.maxUnavailable} (want 1)`);
}

// RBAC: the pods' ServiceAccount, bound to a Role that may only get, list and watch pods.
const roles = ofKind("Role");
check(ofKind("ClusterRole").length === 0 && ofKind("ClusterRoleBinding").length === 0, "no ClusterRole or ClusterRoleBinding");
for (const r of roles) {
  const rules = r.rules ?? [];
  const exact = rules.length === 1 &&
    JSON.stringify(rules[0].apiGroups) === JSON.stringify([""]) &&
    JSON.stringify(rules[0].resources) === JSON.stringify(["pods"]) &&
    [...(rules[0].verbs ?? [])].sort().join(",") === "get,list,watch" &&
    !rules[0].resourceNames && !rules[0].nonResourceURLs;
  check(exact, `${id(r)}: exactly get, list, watch on pods in the core group`, `${id(r)}: rules ${JSON.stringify(rules)} are not exactly get/list/watch on pods in ""`);
}
for (const w of workloads) {
  const sa = w.spec.template.spec.serviceAccountName;
  if (!check(!!sa && !!named("ServiceAccount", sa), `${id(w)}: ServiceAccount ${sa} in the set`, `${id(w)}: serviceAccountName '${sa}' is not a ServiceAccount of the set`)) continue;
  const binding = ofKind("RoleBinding").find(b =>
    (b.subjects ?? []).some(s => s.kind === "ServiceAccount" && s.name === sa) &&
    b.roleRef?.kind === "Role" && roles.some(r => r.metadata.name === b.roleRef.name));
  check(!!binding, `${id(w)}: ${sa} bound to ${binding?.roleRef?.name} by ${binding ? id(binding) : "?"}`, `${id(w)}: no RoleBinding gives ${sa} a Role of the set`);
}

// Containers, ports, probes, discovery, arguments, storage.
function mainContainer(w) {
  const cs = w.spec.template.spec.containers ?? [];
  return cs.find(c => c.name === "ecsnet") ?? cs[0];
}
function containerPort(c, ref) {
  return (c?.ports ?? []).find(p => (typeof ref === "number" ? p.containerPort === ref : p.name === ref || String(p.containerPort) === ref));
}
function argValues(args, flag) {
  const out = [];
  for (let i = 0; i < args.length; i++) {
    if (args[i] === flag && i + 1 < args.length) out.push(args[i + 1]);
    else if (args[i].startsWith(flag + "=")) out.push(args[i].slice(flag.length + 1));
  }
  return out;
}
const argValue = (args, flag) => argValues(args, flag)[0];
function envVar(c, name) {
  return (c.env ?? []).find(e => e.name === name);
}
function volumeOf(w, mountPath) {
  const c = mainContainer(w);
  const m = (c.volumeMounts ?? []).find(v => v.mountPath === mountPath);
  const v = m && (w.spec.template.spec.volumes ?? []).find(x => x.name === m.name);
  return { mount: m, volume: v };
}
function referenced(kind, name, what) {
  if (named(kind, name)) return pass(`${what}: ${kind} ${name} in the set`);
  if (opts.complete) return fail(`${what}: ${kind} ${name} is not in the set`);
  info(`${what}: ${kind} ${name} is not in the set (an existing one is expected in the namespace)`);
}

const instance = objs.find(o => o.metadata?.labels?.[LABEL_INSTANCE])?.metadata.labels[LABEL_INSTANCE];
const DISCOVERY = "EcsNet__Node__Discovery__";
// EcsNetDiscoveryOptions' keys, as environment variables (Endpoints__N: the list of the config method).
const DISCOVERY_KEYS = /^(Method|PodLabelSelector|Namespace|PortName|Endpoints__\d+|LookupInterval|LookupTimeout|RequiredContactPoints|StableMargin)$/;

for (const w of workloads) {
  const pod = w.spec.template.spec;
  const c = mainContainer(w);
  const comp = component(w);
  const name = id(w);
  const args = (c.args ?? []).map(String);
  const cmd = [...(c.command ?? []), ...args].join(" ");

  // ports
  const want = comp === "coordinator" ? [4053, 8080, 4060] : [4053, 8080];
  const have = (c.ports ?? []).map(p => p.containerPort);
  const lacking = want.filter(p => !have.includes(p));
  check(lacking.length === 0, `${name}: container ports ${want.join(", ")}`, `${name}: container ports lack ${lacking.join(", ")}`);
  const extra = have.filter(p => !want.includes(p));
  check(extra.length === 0, `${name}: no other container ports`, `${name}: container ports ${extra.join(", ")} the node does not serve`);
  // The discovery joiner takes each pod's container port named PortName (default "remoting") as its cluster port.
  const portName = envVar(c, DISCOVERY + "PortName")?.value ?? "remoting";
  check(containerPort(c, 4053)?.name === portName && containerPort(c, portName)?.containerPort === 4053,
    `${name}: 4053 named '${portName}' (the discovery's port name)`,
    `${name}: 4053 is named '${containerPort(c, 4053)?.name ?? "-"}', the port named '${portName}' (the discovery's port name) is ${containerPort(c, portName)?.containerPort ?? "missing"}`);
  if (opts.imagePorts) {
    const notExposed = have.filter(p => !opts.imagePorts.includes(p));
    check(notExposed.length === 0, `${name}: every container port is EXPOSEd by the images`, `${name}: container ports ${notExposed.join(", ")} are not EXPOSEd by the images (${opts.imagePorts.join(" ")})`);
  }

  // probes
  for (const kindOfProbe of ["livenessProbe", "readinessProbe", "startupProbe"]) {
    const p = c[kindOfProbe];
    if (!p) continue;
    const port = p.httpGet?.port ?? p.grpc?.port ?? p.tcpSocket?.port;
    if (port === undefined) continue;
    check(!!containerPort(c, port), `${name}: ${kindOfProbe} port ${port} is a declared container port`, `${name}: ${kindOfProbe} port ${port} is not declared`);
  }
  const httpProbe = (p, path) => p?.httpGet?.path === path && containerPort(c, p.httpGet.port)?.containerPort === 8080;
  check(httpProbe(c.livenessProbe, "/healthz/live"), `${name}: liveness GET /healthz/live on 8080`);
  check(httpProbe(c.readinessProbe, "/healthz/ready"), `${name}: readiness GET /healthz/ready on 8080`);
  if (comp === "coordinator") {
    const grpcProbe = [c.startupProbe, c.readinessProbe].find(p => p?.grpc);
    check(!!grpcProbe && containerPort(c, grpcProbe.grpc.port)?.containerPort === 4060, `${name}: gRPC probe on 4060`, `${name}: no startup/readiness gRPC probe on 4060`);
  }

  // shutdown
  const grace = pod.terminationGracePeriodSeconds;
  check(typeof grace === "number" && grace >= 60, `${name}: terminationGracePeriodSeconds ${grace} >= 60`, `${name}: terminationGracePeriodSeconds ${grace} (want >= 60)`);
  check((c.lifecycle?.preStop?.sleep?.seconds ?? 0) >= 1, `${name}: preStop sleep ${c.lifecycle?.preStop?.sleep?.seconds} s`, `${name}: no preStop sleep action`);

  // security
  const sc = pod.securityContext ?? {};
  check(sc.runAsNonRoot === true && sc.runAsUser === 10001 && sc.runAsGroup === 10001, `${name}: runs as non-root 10001:10001`,
    `${name}: pod securityContext ${JSON.stringify(sc)} is not non-root 10001:10001`);

  // discovery environment
  const podIp = envVar(c, "POD_IP");
  check(podIp?.valueFrom?.fieldRef?.fieldPath === "status.podIP", `${name}: POD_IP from status.podIP`);
  check(envVar(c, DISCOVERY + "Method")?.value === "kubernetes", `${name}: ${DISCOVERY}Method=kubernetes`);
  const selector = envVar(c, DISCOVERY + "PodLabelSelector")?.value ?? "";
  const selLabels = Object.fromEntries(selector.split(",").filter(Boolean).map(kv => kv.split("=").map(s => s.trim())));
  check(selector === `${LABEL_NAME}=ecsnet,${LABEL_INSTANCE}=${instance}` && matchesLabels(selLabels, podLabels(w)),
    `${name}: ${DISCOVERY}PodLabelSelector=${selector} selects the pods`, `${name}: ${DISCOVERY}PodLabelSelector '${selector}' (want ${LABEL_NAME}=ecsnet,${LABEL_INSTANCE}=${instance})`);
  const unknownKeys = (c.env ?? []).map(e => e.name).filter(n => n.startsWith(DISCOVERY) && !DISCOVERY_KEYS.test(n.slice(DISCOVERY.length)));
  check(unknownKeys.length === 0, `${name}: only known ${DISCOVERY}* keys`, `${name}: ${unknownKeys.join(", ")}: not discovery options (no ManagementPort since the discovery joiner)`);
  const management = (c.env ?? []).map(e => e.name).filter(n => /management/i.test(n));
  check(management.length === 0, `${name}: no Akka.Management variables`, `${name}: Akka.Management variables ${management.join(", ")}`);
  const seeds = (c.env ?? []).map(e => e.name).filter(n => n.startsWith("EcsNet__Node__Seeds__"));
  check(seeds.length === 0 && argValues(args, "--seed").length === 0, `${name}: no seeds beside discovery`, `${name}: seeds and discovery both given (the node refuses that)`);
  for (const key of ["StableMargin", "LookupInterval", "LookupTimeout"]) {
    const v = envVar(c, DISCOVERY + key)?.value;
    if (v !== undefined) check(/^(\d+\.)?\d{1,2}:\d{2}:\d{2}(\.\d+)?$/.test(v), `${name}: ${DISCOVERY}${key}=${v}`, `${name}: ${DISCOVERY}${key} '${v}' is not a time span like 00:00:05`);
  }
  const rcp = Number(envVar(c, DISCOVERY + "RequiredContactPoints")?.value);
  check(Number.isInteger(rcp) && rcp >= 1, `${name}: ${DISCOVERY}RequiredContactPoints=${rcp}`);
  check(envVar(c, DISCOVERY + "Namespace")?.valueFrom?.fieldRef?.fieldPath === "metadata.namespace", `${name}: ${DISCOVERY}Namespace from metadata.namespace`);
  const undefinedVars = [...cmd.matchAll(/\$\((\w+)\)/g)].map(m => m[1]).filter(v => !envVar(c, v));
  check(undefinedVars.length === 0, `${name}: every $(VAR) in the arguments is a container variable`, `${name}: undefined $(${undefinedVars.join("), $(")}) in the arguments`);

  // arguments, shared by both roles
  check(argValue(args, "--hostname") === "$(POD_IP)", `${name}: --hostname $(POD_IP)`);
  check(argValue(args, "--health-url") === "http://0.0.0.0:8080", `${name}: --health-url http://0.0.0.0:8080`);
  check(args.includes("--log-json"), `${name}: --log-json`);
  const roles = (argValue(args, "--roles") ?? "").split(",");

  // storage
  const data = volumeOf(w, "/data");
  check(!!data.volume?.persistentVolumeClaim && data.mount.readOnly === true, `${name}: /data from a PVC, read-only`);
  const runs = volumeOf(w, "/runs");
  check(!!runs.volume?.persistentVolumeClaim && !runs.mount.readOnly, `${name}: /runs from a PVC, writable`);
  for (const v of pod.volumes ?? []) {
    if (v.persistentVolumeClaim) referenced("PersistentVolumeClaim", v.persistentVolumeClaim.claimName, name);
    if (v.configMap) referenced("ConfigMap", v.configMap.name, name);
    if (v.secret) referenced("Secret", v.secret.secretName, name);
  }
  const mountsWithoutVolume = (c.volumeMounts ?? []).filter(m => !(pod.volumes ?? []).some(v => v.name === m.name));
  check(mountsWithoutVolume.length === 0, `${name}: every volume mount has its volume`, `${name}: mounts without volumes: ${mountsWithoutVolume.map(m => m.name).join(", ")}`);
  for (const e of c.env ?? []) {
    if (e.valueFrom?.secretKeyRef) referenced("Secret", e.valueFrom.secretKeyRef.name, `${name} env ${e.name}`);
  }

  // GPUs
  const gpuLimit = Number(c.resources?.limits?.["nvidia.com/gpu"] ?? 0);
  const gpuRequest = c.resources?.requests?.["nvidia.com/gpu"];
  const devices = argValues(args, "--device");
  if (comp === "coordinator") {
    check(args[0] === "serve", `${name}: runs 'ecsnet serve'`, `${name}: first argument '${args[0]}' (want serve)`);
    check(roles.includes("coordinator"), `${name}: --roles ${roles.join(",")} includes coordinator`);
    check(argValue(args, "--port") === "4060" && argValue(args, "--bind") === "0.0.0.0", `${name}: control API on 0.0.0.0:4060`);
    check(argValue(args, "--cluster-port") === "4053", `${name}: --cluster-port 4053`);
    const tokenFile = argValue(args, "--token-file") ?? "";
    const token = volumeOf(w, dirname(tokenFile));
    check(!!token.volume?.secret && tokenFile.endsWith("/token"), `${name}: --token-file ${tokenFile} from Secret ${token.volume?.secret?.secretName}`,
      `${name}: --token-file '${tokenFile}' is not the key 'token' of a mounted Secret`);
    check(argValue(args, "--runs") === "/runs", `${name}: --runs /runs`);
    const registry = argValue(args, "--registry");
    if (registry !== undefined) {
      const v = /^\$\((\w+)\)$/.exec(registry)?.[1];
      check(!!v && !!envVar(c, v)?.valueFrom?.secretKeyRef, `${name}: --registry from a Secret (${v})`, `${name}: --registry '${registry}' does not come from a Secret`);
    } else info(`${name}: no --registry (SQLite in /runs)`);
    check(!!volumeOf(w, "/etc/ecsnet/experiments").volume?.configMap, `${name}: experiments ConfigMap at /etc/ecsnet/experiments`);
    check(gpuLimit === 0 && devices.length === 0, `${name}: no GPU`, `${name}: the coordinator asks for GPUs or devices`);
  } else {
    check(args[0] === "node", `${name}: runs 'ecsnet node'`, `${name}: first argument '${args[0]}' (want node)`);
    check(roles.includes("worker"), `${name}: --roles ${roles.join(",")} includes worker`);
    check(argValue(args, "--port") === "4053", `${name}: --port 4053`);
    if (gpuLimit > 0) {
      const wantDevices = Array.from({ length: gpuLimit }, (_, i) => `cuda:${i}`);
      check(JSON.stringify(devices) === JSON.stringify(wantDevices), `${name}: nvidia.com/gpu ${gpuLimit} and --device ${devices.join(" --device ")}`,
        `${name}: nvidia.com/gpu ${gpuLimit} but devices [${devices.join(", ")}] (want ${wantDevices.join(", ")})`);
      check(gpuRequest === undefined || Number(gpuRequest) === gpuLimit, `${name}: GPU request equals the limit`, `${name}: GPU request ${gpuRequest} != limit ${gpuLimit}`);
      check(!args.includes("--workers"), `${name}: no --workers beside --device`);
    } else {
      check(devices.every(d => !d.startsWith("cuda")), `${name}: CPU worker without CUDA devices`, `${name}: --device ${devices.join(", ")} without nvidia.com/gpu`);
      check(gpuRequest === undefined, `${name}: no GPU request`, `${name}: GPU request without a limit`);
      check(Number(argValue(args, "--workers")) >= 1, `${name}: --workers ${argValue(args, "--workers")}`, `${name}: CPU worker without --workers N`);
    }
    if (opts.variant) {
      check((opts.variant === "cuda") === gpuLimit > 0, `${name}: ${opts.variant} variant`, `${name}: not the ${opts.variant} variant (nvidia.com/gpu ${gpuLimit})`);
    }
    if (opts.gpus !== null) check(gpuLimit === opts.gpus, `${name}: ${opts.gpus} GPUs a worker`, `${name}: ${gpuLimit} GPUs a worker (want ${opts.gpus})`);
    if (opts.workers !== null) check(w.spec.replicas === opts.workers, `${name}: ${opts.workers} replicas`, `${name}: ${w.spec.replicas} replicas (want ${opts.workers})`);
  }
}

// The pods' container ports, all workloads together, are the ports the images EXPOSE.
if (opts.imagePorts) {
  const declared = [...new Set(workloads.flatMap(w => (mainContainer(w).ports ?? []).map(p => p.containerPort)))].sort((a, b) => a - b);
  const exposed = [...opts.imagePorts].sort((a, b) => a - b);
  check(JSON.stringify(declared) === JSON.stringify(exposed), `container ports ${declared.join(" ")} = the images' EXPOSE ${exposed.join(" ")}`,
    `container ports ${declared.join(" ")} differ from the images' EXPOSE ${exposed.join(" ")}`);
}

// The example experiments
for (const cm of ofKind("ConfigMap").filter(m => m.data && "experiment.yaml" in m.data)) {
  for (const [key, text] of Object.entries(cm.data).filter(([k]) => /\.ya?ml$/.test(k))) {
    let e = null;
    try {
      e = YAML.parse(text);
    } catch (err) {
      fail(`${id(cm)} ${key}: not YAML: ${err.message}`);
      continue;
    }
    const problems = [];
    if (!e || typeof e !== "object") problems.push("not a mapping");
    else {
      if (typeof e.name !== "string" || !e.name) problems.push("no name");
      const ds = e.dataset ?? {};
      if (!ds.voc && !ds.synthetic) problems.push("dataset is neither voc nor synthetic");
      if (ds.voc && !(typeof ds.voc.root === "string" && ds.voc.root.startsWith("/data/"))) problems.push("dataset.voc.root is not under /data");
      const stages = e.stages ?? [];
      const bad = stages.filter(s => !["cam", "crf", "aff", "rw", "seg"].includes(s));
      if (bad.length) problems.push(`unknown stages ${bad.join(", ")}`);
      if (e.workers !== undefined && !(Number.isInteger(e.workers) && e.workers >= 1 && e.workers <= 64)) problems.push("workers outside 1..64");
    }
    check(problems.length === 0, `${id(cm)} ${key}: run keys name, dataset, stages, workers`, `${id(cm)} ${key}: ${problems.join("; ")}`);
  }
}

// ServiceMonitors
for (const sm of ofKind("ServiceMonitor")) {
  const svcs = services.filter(s => matchesLabels(sm.spec?.selector, s.metadata?.labels ?? {}));
  if (!check(svcs.length > 0, `${id(sm)}: selects ${svcs.map(id).join(", ")}`, `${id(sm)}: selects no Service of the set`)) continue;
  for (const ep of sm.spec.endpoints ?? []) {
    const lacking = svcs.filter(s => !(s.spec.ports ?? []).some(p => p.name === ep.port));
    check(lacking.length === 0 && ep.path === "/metrics", `${id(sm)}: scrapes port ${ep.port} ${ep.path}`,
      `${id(sm)}: endpoint port '${ep.port}' path '${ep.path}' (missing on ${lacking.map(id).join(", ")})`);
    const toHttp = svcs.every(s => {
      const p = (s.spec.ports ?? []).find(x => x.name === ep.port);
      const selected = workloads.filter(w => matchesLabels(s.spec.selector, podLabels(w)));
      return p && selected.every(w => containerPort(mainContainer(w), p.targetPort ?? p.port)?.containerPort === 8080);
    });
    check(toHttp, `${id(sm)}: port ${ep.port} reaches 8080 on every pod`);
  }
  const nsSel = sm.spec.namespaceSelector?.matchNames ?? [];
  const ns = services[0]?.metadata?.namespace;
  check(!ns || nsSel.length === 0 || nsSel.includes(ns), `${id(sm)}: namespaceSelector covers ${ns}`);
}
// Grafana dashboards
for (const cm of ofKind("ConfigMap").filter(m => Object.keys(m.data ?? {}).some(k => k.endsWith(".json")))) {
  for (const [key, text] of Object.entries(cm.data).filter(([k]) => k.endsWith(".json"))) {
    let d = null;
    try {
      d = JSON.parse(text);
    } catch (err) {
      fail(`${id(cm)} ${key}: not JSON: ${err.message}`);
      continue;
    }
    check(typeof d.title === "string" && Array.isArray(d.panels), `${id(cm)} ${key}: a Grafana dashboard "${d.title}" with ${d.panels?.length} panels`,
      `${id(cm)} ${key}: no title or panels`);
  }
}

console.log(`  -- ${opts.name}: ${passes} checks ok, ${failures} failed`);
process.exit(failures ? 1 : 0);
