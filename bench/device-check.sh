#!/usr/bin/env bash
# Device placement check on a machine with an NVIDIA GPU: builds the CUDA variant of ecsnet
# (-p:EcsNetCuda=true, which fetches TorchSharp-cuda-linux) and trains the small CAM network for a few steps
# on the CPU and on cuda:0 from the same start, printing the step times and the largest weight difference.
# Usage: bench/device-check.sh [OUT_DIR] [DEVICE]   (default OUT_DIR runs/device-check, DEVICE cuda:0)
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-runs/device-check}"
device="${2:-cuda:0}"
mkdir -p "$out"
if ! command -v nvidia-smi >/dev/null 2>&1; then
  echo "error: nvidia-smi not found: this check needs an NVIDIA GPU and its driver" >&2
  exit 2
fi
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$out/gpu.csv"
dotnet publish src/EcsNet.Cli -c Release -p:EcsNetCuda=true -o "$out/ecsnet-cuda"
for steps in 5 20; do
  "$out/ecsnet-cuda/ecsnet" bench device --device "$device" --steps "$steps" --json | tee "$out/device-$steps.json"
done
