#!/usr/bin/env bash
# Smoke test of the CPU image (docs/DEPLOY.md, "Images"): `ecsnet --version` in a container, the ResNet-18 weights at
# $ECSNET_RESNET18_ONNX, then two containers on the host's network (loopback addresses only) — one `ecsnet serve`
# with every role, one worker node that joins it —
# which must form one Akka cluster and answer the control API (gRPC health, then `ecsnet status` with the token).
# Usage: k8s/images/smoke.sh [TAG]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
tag=${1:-localhost/ecsnet:dev}
export CONTAINERS_CONF=$root/k8s/images/containers.conf
work=$(mktemp -d)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
cleanup() {
  for c in ecsnet-smoke-serve ecsnet-smoke-worker; do
    podman logs "$c" >"$work/$c.log" 2>&1 || true
    podman rm -f "$c" >/dev/null 2>&1 || true
  done
}
fail() { echo "smoke test failed: $*" >&2; for f in "$work"/*.log; do echo "--- $f" >&2; tail -30 "$f" >&2; done; exit 1; }
trap 'cleanup; rm -rf "$work"' EXIT

echo "== ecsnet --version in the image"
podman run --rm "$tag" --version

echo "== the ResNet-18 weights of --backbone resnet18 at \$ECSNET_RESNET18_ONNX, readable by the image's user"
sha=$(sed -n 's/.*const string Sha256 = "\([0-9a-f]*\)".*/\1/p' "$root/src/EcsNet.Core/Weights/ResNet18Onnx.cs")
got=$(podman run --rm --entrypoint /bin/sh "$tag" -c 'sha256sum "$ECSNET_RESNET18_ONNX"' | cut -d' ' -f1)
[ "$got" = "$sha" ] || fail "ResNet-18 weights in the image: sha256 '$got', expected $sha"

token=smoke-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "$token" >"$work/token"
chmod 644 "$work/token"
seed_port=$(free_port); worker_port=$(free_port); api_port=$(free_port); http_a=$(free_port); http_b=$(free_port)

echo "== two containers on the host network: serve (all roles) + a worker node joining it"
podman run -d --name ecsnet-smoke-serve --network host -v "$work/token:/etc/ecsnet/token:ro" "$tag" \
  serve --port "$api_port" --bind 127.0.0.1 --cluster-port "$seed_port" --hostname 127.0.0.1 \
  --health-url "http://127.0.0.1:$http_a" --token-file /etc/ecsnet/token --runs /tmp/runs >/dev/null
podman run -d --name ecsnet-smoke-worker --network host "$tag" \
  node --roles worker --seed "akka.tcp://ecsnet@127.0.0.1:$seed_port" --port "$worker_port" --hostname 127.0.0.1 \
  --health-url "http://127.0.0.1:$http_b" >/dev/null

ecsnet=$root/src/EcsNet.Cli/bin/Release/net10.0/ecsnet
[ -x "$ecsnet" ] || dotnet build "$root/src/EcsNet.Cli" -c Release -v quiet -nologo >/dev/null
ready() { python3 - "$1" <<'PY'
import sys, urllib.request
try:
    sys.exit(0 if urllib.request.urlopen(sys.argv[1], timeout=2).status == 200 else 1)
except Exception:
    sys.exit(1)
PY
}
for i in $(seq 1 90); do
  if ready "http://127.0.0.1:$http_a/healthz/ready" && ready "http://127.0.0.1:$http_b/healthz/ready"; then break; fi
  [ "$i" = 90 ] && { cleanup; fail "the nodes did not become ready in 90 s"; }
  sleep 1
done
echo "both nodes ready"

# the standard gRPC health service, called as any client would (no token needed): an empty HealthCheckRequest;
# the reply 08 01 is status SERVING
/usr/bin/python3 - "127.0.0.1:$api_port" <<'PY' || { cleanup; fail "the gRPC health check did not answer SERVING"; }
import sys, grpc
check = grpc.insecure_channel(sys.argv[1]).unary_unary("/grpc.health.v1.Health/Check",
    request_serializer=lambda _: b"", response_deserializer=lambda b: b)
reply = check(None, timeout=10)
print("grpc.health.v1 Check:", reply.hex())
sys.exit(0 if reply == b"\x08\x01" else 1)
PY

status=$("$ecsnet" status --server "http://127.0.0.1:$api_port" --token "$token") || { cleanup; fail "ecsnet status: $status"; }
echo "$status"
members=$(grep -c "│ akka.tcp://ecsnet@127.0.0.1" <<<"$status" || true)
[ "$members" = 2 ] || { cleanup; fail "expected 2 cluster members, saw $members"; }
grep -q "Up" <<<"$status" || { cleanup; fail "members are not Up"; }
if "$ecsnet" runs --server "http://127.0.0.1:$api_port" --token wrong-token-for-the-smoke-test >/dev/null 2>&1; then
  cleanup; fail "a wrong token was accepted"
fi
echo "smoke test passed: the image runs, two containers formed one cluster, the control API answers with the token only"
