#!/usr/bin/env bash
# All-reduce bus bandwidth: ours (gRPC ring) side by side with torch.distributed gloo and the loopback TCP
# ceiling, in one run, same sizes, same protocol (see docs/BENCHMARKS-allreduce.md).
# usage: bench/allreduce.sh [OUT_DIR]   (from the repository root; needs Debian's python3-torch)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/bench-allreduce}"
mkdir -p "$out"
peers=../shared/peers
sizes=1,4,16,64,256
dotnet build src/EcsNet.Cli -c Release -v quiet -nologo > /dev/null
ecsnet=src/EcsNet.Cli/bin/Release/net10.0/ecsnet
{ date -u; nproc; uptime; } > "$out/machine.txt"
/usr/bin/python3 "$peers/loopback_tcp.py" | tee "$out/tcp.txt"
for world in 2 3; do
  "$ecsnet" bench allreduce --world "$world" --sizes "$sizes" --runs 11 --warmup 2 --json | tee "$out/ecsnet-$world.json"
  echo
  /usr/bin/python3 "$peers/gloo_allreduce.py" --world "$world" --sizes "$sizes" --iters 11 --warmup 2 | tee "$out/gloo-$world.txt"
done
# optional fp16 wire (half the bytes; busbw still counts float32 bytes)
"$ecsnet" bench allreduce --world 2 --sizes "$sizes" --runs 11 --warmup 2 --fp16 --json | tee "$out/ecsnet-2-fp16.json"
echo
/usr/bin/python3 "$peers/loopback_tcp.py" | tee -a "$out/tcp.txt"
# data parallel: equivalence with one process (2 and 3 processes) and backward/all-reduce overlap (2 workers)
"$ecsnet" bench dataparallel --world 2 --steps 20 --overlap-steps 20 | tee "$out/dataparallel-2.txt"
"$ecsnet" bench dataparallel --world 2 --steps 1 --overlap-steps 20 --bucket-kib 1024 | tee "$out/dataparallel-2-1mib.txt"
"$ecsnet" bench dataparallel --world 3 --steps 20 --overlap-steps 0 | tee "$out/dataparallel-3.txt"
uptime >> "$out/machine.txt"
