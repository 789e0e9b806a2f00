#!/usr/bin/env bash
# The CAM stage on both synthetic families, with each preset (docs/RESULTS.md, "Both synthetic families"): the
# small trunk from scratch (--preset small, the demo's default) against the ImageNet ResNet-18 (--preset quality),
# ECS-Net as the experiment configures it, 8 epochs. Run from the repository root:
#   bash bench/cam-families.sh OUT [ROW...]
# One line per row in OUT/summary.txt: train and inference time and the train-split pseudo-label mIoU at the
# experiment's background score and at the best of the sweep 0.05…0.70 (the masks are read only by the sweep).
set -euo pipefail
out=${1:-runs/cam-families}; shift || true
want=("$@")
mkdir -p "$out"
dotnet build src/EcsNet.Cli -c Release >/dev/null
ecsnet() { dotnet src/EcsNet.Cli/bin/Release/net10.0/ecsnet.dll "$@"; }
# Same size for both: 160 train + 40 val images; parts at 128 px (the demo's family), marks with sides 100-160.
[ -d "$out/parts/VOC2012" ] || ecsnet data synth --out "$out/parts" --images 160 --val 40 --size 128 --seed 5 >/dev/null
[ -d "$out/marks/VOC2012" ] || ecsnet data synth --out "$out/marks" --family marks --images 160 --val 40 --seed 5 >/dev/null
row() {  # row NAME FAMILY PRESET
  local name=$1 family=$2 preset=$3
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then return 0; fi
  local run="$out/$name" t0 t1 t2
  rm -rf "$run"; t0=$(date +%s)
  ecsnet train-cam --voc "$out/$family" --out "$run" --preset "$preset" > "$run.train.log" 2>&1
  t1=$(date +%s)
  ecsnet infer-cam --run "$run" --voc "$out/$family" --split train --out "$run/infer" --sweep > "$run.infer.log" 2>&1
  t2=$(date +%s)
  echo "$name | train $((t1 - t0)) s | infer $((t2 - t1)) s | at 0.10: $(grep -E '^. *0\.10 ' "$run.infer.log" | tr -d '│|' | awk '{print $2}') | $(grep 'best background' "$run.infer.log") | $family $preset" | tee -a "$out/summary.txt"
}
row f1-parts-small   parts small
row f2-parts-quality parts quality
row f3-marks-small   marks small
row f4-marks-quality marks quality
