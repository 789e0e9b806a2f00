#!/usr/bin/env bash
# All-reduce bus bandwidth: ours (shared memory and the gRPC ring) side by side with torch.distributed gloo and the loopback TCP
# ceiling, in one run, same sizes, same protocol (see docs/BENCHMARKS-allreduce.md).
# usage: bench/allreduce.sh [--peers PEERS_DIR] [OUT_DIR]   (from the repository root; needs Debian's python3-torch)
# PEERS_DIR (default: $ECSNET_PEERS) holds the peer scripts loopback_tcp.py and gloo_allreduce.py, which are not
# part of this repository; docs/BENCHMARKS.md ("Peers") describes them and how to get them.
set -euo pipefail
peers="${ECSNET_PEERS:-}"
if [ "${1:-}" = "--peers" ]; then
  [ $# -ge 2 ] || { echo "bench/allreduce.sh: --peers needs a folder" >&2; exit 2; }
  peers=$2
  shift 2
fi
if [ -z "$peers" ]; then
  echo "bench/allreduce.sh: no peer folder: pass --peers DIR or set ECSNET_PEERS to the folder holding" \
    "loopback_tcp.py and gloo_allreduce.py (see docs/BENCHMARKS.md, \"Peers\")" >&2
  exit 2
fi
for script in loopback_tcp.py gloo_allreduce.py; do
  if [ ! -f "$peers/$script" ]; then
    echo "bench/allreduce.sh: the peer folder '$peers' has no $script (see docs/BENCHMARKS.md, \"Peers\")" >&2
    exit 2
  fi
done
peers=$(cd "$peers" && pwd)   # absolute: a relative folder is taken from where the script was started
cd "$(dirname "$0")/.."
out="${1:-out/bench-allreduce}"
mkdir -p "$out"
sizes=1,4,16,64,256
dotnet build src/EcsNet.Cli -c Release -v quiet -nologo > /dev/null
ecsnet=src/EcsNet.Cli/bin/Release/net10.0/ecsnet
{ date -u; nproc; uptime; } > "$out/machine.txt"
/usr/bin/python3 "$peers/loopback_tcp.py" | tee "$out/tcp.txt"
# each transport next to gloo, in turn: shared memory (auto: every rank is on this host) and the gRPC ring
for world in 2 3; do
  "$ecsnet" bench allreduce --world "$world" --sizes "$sizes" --runs 11 --warmup 2 --json | tee "$out/ecsnet-$world.json"
  echo
  /usr/bin/python3 "$peers/gloo_allreduce.py" --world "$world" --sizes "$sizes" --iters 11 --warmup 2 | tee "$out/gloo-$world.txt"
  "$ecsnet" bench allreduce --world "$world" --sizes "$sizes" --runs 11 --warmup 2 --transport grpc --json | tee "$out/ecsnet-$world-grpc.json"
  echo
done
# optional fp16 wire (half the bytes; busbw still counts float32 bytes)
"$ecsnet" bench allreduce --world 2 --sizes "$sizes" --runs 11 --warmup 2 --transport grpc --fp16 --json | tee "$out/ecsnet-2-fp16.json"
echo
/usr/bin/python3 "$peers/loopback_tcp.py" | tee -a "$out/tcp.txt"
# data parallel: equivalence with one process (2 and 3 processes) and backward/all-reduce overlap (2 workers)
"$ecsnet" bench dataparallel --world 2 --steps 20 --overlap-steps 20 | tee "$out/dataparallel-2.txt"
"$ecsnet" bench dataparallel --world 2 --steps 1 --overlap-steps 20 --bucket-kib 1024 | tee "$out/dataparallel-2-1mib.txt"
"$ecsnet" bench dataparallel --world 3 --steps 20 --overlap-steps 0 | tee "$out/dataparallel-3.txt"
uptime >> "$out/machine.txt"
