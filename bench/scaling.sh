#!/usr/bin/env bash
# Calibration runs of the cost model in docs/SCALING.md, and the 16-process ring re-formed after a SIGKILL.
# usage: bench/scaling.sh [OUT_DIR]   (from the repository root; default out/bench-scaling)
# Then: /usr/bin/python3 bench/scaling_model.py OUT_DIR   (add ecsnet-2.json and ecsnet-2-grpc.json from
# bench/allreduce.sh to OUT_DIR for the uncontended CPU and bandwidth figures).
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-out/bench-scaling}"
mkdir -p "$out"
dotnet build src/EcsNet.Cli -c Release -v quiet -nologo > /dev/null
ecsnet=src/EcsNet.Cli/bin/Release/net10.0/ecsnet
for world in 2 4 8 16; do
  for transport in grpc shm; do
    "$ecsnet" bench allreduce --world "$world" --sizes 1,16 --runs 11 --warmup 2 --settle-mib 64 --transport "$transport" --json \
      | tee "$out/cal-$transport-$world.json"
  done
done
for i in 1 2 3; do
  "$ecsnet" bench reform --world 16 --kill-rank 5 --transport grpc --json | tee -a "$out/reform-grpc.jsonl"
  "$ecsnet" bench reform --world 16 --kill-rank 5 --json | tee -a "$out/reform-auto.jsonl"
done
