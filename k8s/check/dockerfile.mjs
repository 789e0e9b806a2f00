// A static lint of the image Dockerfiles (k8s/images/Dockerfile, k8s/images/Dockerfile.cuda), for machines without
// hadolint or a container engine. Each file must:
//   - parse: known instructions only, no dangling line continuation, JSON where an instruction is in exec form;
//   - take its base as an argument: `ARG BASE_IMAGE=<default>` before its one `FROM ${BASE_IMAGE}`;
//   - run as a numeric, non-root user (`USER uid[:gid]`, neither 0), the last USER of the file;
//   - EXPOSE exactly the node's ports (4053 Akka remoting, 4060 the gRPC control API, 8080 health/metrics/reports);
//   - start `ENTRYPOINT ["/app/ecsnet"]` and copy the published app with `COPY [--flags] app/ /app/`;
//   - carry the ImageNet ResNet-18 of `--backbone resnet18`: `COPY [--flags] weights/ResNet18.onnx <path>` and
//     `ENV ECSNET_RESNET18_ONNX=<the same absolute path>` (a published app has no NuGet cache to find it in).
// All the files must EXPOSE the same set, and declare the same USER.
//
// node dockerfile.mjs [--ports-file OUT] DOCKERFILE...
//   --ports-file OUT  when every check passed, write the EXPOSEd ports (comma-separated) to OUT, for
//                     validate.mjs --image-ports (the manifests' container ports must be these)
// Exit code 0 when everything passed, 1 when a check failed, 2 on bad usage.

import { readFileSync, writeFileSync } from "node:fs";

const EXPECTED_PORTS = [4053, 4060, 8080];
const INSTRUCTIONS = new Set([
  "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL", "MAINTAINER", "ONBUILD",
  "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
]);

const args = process.argv.slice(2);
let portsFile = null;
const files = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === "--ports-file") {
    if (i + 1 >= args.length) usage("--ports-file needs a value");
    portsFile = args[++i];
  } else if (args[i].startsWith("--")) usage(`unknown option ${args[i]}`);
  else files.push(args[i]);
}
if (files.length === 0) usage("no Dockerfiles");

function usage(msg) {
  console.error(`dockerfile.mjs: ${msg}`);
  process.exit(2);
}

let failures = 0;
let passes = 0;
const say = line => console.log(`  ${line}`);
function check(cond, okMsg, failMsg) {
  if (cond) {
    passes++;
    say(`ok    ${okMsg}`);
  } else {
    failures++;
    say(`FAIL  ${failMsg ?? okMsg}`);
  }
  return cond;
}

// Instructions of a Dockerfile: comment lines dropped, continuation lines (a trailing backslash) joined. The escape
// character is the default one; heredocs are not supported (these files have none).
function parse(text) {
  const out = [];
  const problems = [];
  let current = null;
  const lines = text.split(/\r?\n/);
  lines.forEach((raw, i) => {
    const line = raw.trimEnd();
    if (/^\s*#/.test(line) || line.trim() === "") return; // comments and empty lines, also inside a continued instruction
    const continued = line.endsWith("\\");
    const body = continued ? line.slice(0, -1) : line;
    if (current === null) current = { line: i + 1, text: body.trim() };
    else current.text += " " + body.trim();
    if (!continued) {
      out.push(current);
      current = null;
    }
  });
  if (current !== null) problems.push(`line ${current.line}: the last instruction ends in a line continuation`);
  const instructions = [];
  for (const { line, text: t } of out) {
    const m = /^(\S+)\s*(.*)$/.exec(t);
    const keyword = m[1].toUpperCase();
    if (!INSTRUCTIONS.has(keyword)) {
      problems.push(`line ${line}: unknown instruction '${m[1]}'`);
      continue;
    }
    if (!m[2]) problems.push(`line ${line}: ${keyword} without arguments`);
    instructions.push({ line, keyword, rest: m[2].trim() });
  }
  return { instructions, problems };
}

// The exec (JSON) form of CMD, ENTRYPOINT, RUN, SHELL: an array of strings, or null when the text is not one.
function execForm(rest) {
  if (!rest.startsWith("[")) return null;
  try {
    const v = JSON.parse(rest);
    return Array.isArray(v) && v.every(x => typeof x === "string") ? v : null;
  } catch {
    return null;
  }
}

const results = [];
for (const file of files) {
  console.log(`== ${file}`);
  let text;
  try {
    text = readFileSync(file, "utf8");
  } catch (e) {
    check(false, "", `${file}: cannot read: ${e.message}`);
    continue;
  }
  const { instructions, problems } = parse(text);
  const of = k => instructions.filter(x => x.keyword === k);
  check(problems.length === 0, `${file}: parses (${instructions.length} instructions)`, `${file}: ${problems.join("; ")}`);
  const badJson = instructions.filter(x => ["CMD", "ENTRYPOINT", "RUN", "SHELL"].includes(x.keyword) && x.rest.startsWith("[") && !execForm(x.rest));
  check(badJson.length === 0, `${file}: exec forms are JSON arrays of strings`, `${file}: ${badJson.map(x => `line ${x.line} ${x.keyword}`).join(", ")}: not a JSON array of strings`);

  // The base image, an argument with a default.
  const froms = of("FROM");
  const firstFrom = instructions.findIndex(x => x.keyword === "FROM");
  const baseArg = instructions.slice(0, Math.max(firstFrom, 0)).find(x => x.keyword === "ARG" && /^BASE_IMAGE=\S+$/.test(x.rest));
  check(!!baseArg, `${file}: ARG ${baseArg?.rest} before FROM`, `${file}: no 'ARG BASE_IMAGE=<default>' before the first FROM`);
  check(froms.length === 1 && /^(\$\{BASE_IMAGE\}|\$BASE_IMAGE)$/.test(froms[0].rest),
    `${file}: one stage, FROM \${BASE_IMAGE}`,
    `${file}: FROM ${froms.map(x => `'${x.rest}'`).join(", ") || "missing"} (want one FROM \${BASE_IMAGE}: the app is published outside the image)`);

  // The user.
  const user = of("USER").at(-1)?.rest;
  const um = /^(\d+)(?::(\d+))?$/.exec(user ?? "");
  check(!!um && Number(um[1]) !== 0 && (um[2] === undefined || Number(um[2]) !== 0), `${file}: USER ${user} (numeric, non-root)`,
    `${file}: USER '${user ?? "(none)"}' is not a numeric non-root uid[:gid] (Kubernetes' runAsNonRoot needs a number)`);

  // The ports.
  const exposed = of("EXPOSE").flatMap(x => x.rest.split(/\s+/)).map(p => p.replace(/\/tcp$/i, ""));
  const ports = exposed.map(Number);
  const dup = ports.filter((p, i) => ports.indexOf(p) !== i);
  const set = [...new Set(ports)].sort((a, b) => a - b);
  check(exposed.every(p => /^\d+$/.test(p)) && dup.length === 0 && JSON.stringify(set) === JSON.stringify(EXPECTED_PORTS),
    `${file}: EXPOSE ${set.join(" ")}`,
    `${file}: EXPOSE ${exposed.join(" ") || "(none)"} (want exactly ${EXPECTED_PORTS.join(" ")}: remoting, control API, HTTP; no 8558)`);

  // What runs, and what is copied.
  const entry = of("ENTRYPOINT");
  const entryArgs = entry.length === 1 ? execForm(entry[0].rest) : null;
  check(JSON.stringify(entryArgs) === JSON.stringify(["/app/ecsnet"]), `${file}: ENTRYPOINT ["/app/ecsnet"]`,
    `${file}: ENTRYPOINT ${entry.map(x => x.rest).join(" / ") || "(none)"} (want one, exec form ["/app/ecsnet"])`);
  const copiesApp = of("COPY").some(x => {
    const operands = x.rest.split(/\s+/).filter(w => !w.startsWith("--"));
    return operands.length === 2 && operands[0] === "app/" && operands[1] === "/app/";
  });
  check(copiesApp, `${file}: COPY app/ /app/`, `${file}: no 'COPY [--flags] app/ /app/' (the published app of the build context)`);

  // The ResNet-18 weights: copied in, and the variable ResNet18Onnx.DefaultPath reads pointing at the copy.
  const env = new Map();
  for (const x of of("ENV")) {
    if (/^[^\s=]+=/.test(x.rest)) {
      for (const pair of x.rest.split(/\s+/)) {
        const eq = pair.indexOf("=");
        if (eq > 0) env.set(pair.slice(0, eq), pair.slice(eq + 1).replace(/^"(.*)"$/, "$1"));
      }
    } else {
      const m = /^(\S+)\s+(.*)$/.exec(x.rest);
      if (m) env.set(m[1], m[2].replace(/^"(.*)"$/, "$1"));
    }
  }
  const onnxTargets = of("COPY").flatMap(x => {
    const operands = x.rest.split(/\s+/).filter(w => !w.startsWith("--"));
    if (operands.length !== 2 || operands[0] !== "weights/ResNet18.onnx") return [];
    return [operands[1].endsWith("/") ? operands[1] + "ResNet18.onnx" : operands[1]];
  });
  const onnxEnv = env.get("ECSNET_RESNET18_ONNX");
  check(onnxTargets.length === 1 && onnxTargets[0].startsWith("/") && onnxEnv === onnxTargets[0],
    `${file}: COPY weights/ResNet18.onnx ${onnxTargets[0]}, ENV ECSNET_RESNET18_ONNX=${onnxEnv}`,
    `${file}: ResNet-18 weights: COPY weights/ResNet18.onnx to ${onnxTargets.join(", ") || "(nowhere)"}, ` +
      `ENV ECSNET_RESNET18_ONNX=${onnxEnv ?? "(unset)"} (want one COPY to an absolute path and the variable naming it)`);

  results.push({ file, ports: set, user });
}

if (results.length > 1) {
  const [first, ...others] = results;
  for (const r of others) {
    check(JSON.stringify(r.ports) === JSON.stringify(first.ports), `${r.file}: EXPOSEs the same ports as ${first.file}`,
      `${r.file}: EXPOSE ${r.ports.join(" ")}, ${first.file}: ${first.ports.join(" ")} (the images must agree)`);
    check(r.user === first.user, `${r.file}: the same USER as ${first.file}`, `${r.file}: USER ${r.user}, ${first.file}: USER ${first.user}`);
  }
}

console.log(`  -- Dockerfiles: ${passes} checks ok, ${failures} failed`);
if (failures === 0 && portsFile && results.length > 0) writeFileSync(portsFile, results[0].ports.join(",") + "\n");
process.exit(failures ? 1 : 0);
