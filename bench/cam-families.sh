#!/usr/bin/env bash
# The CAM stage on both synthetic families, with each preset (docs/RESULTS.md, "Both synthetic families"): the
# small trunk from scratch (--preset small, the demo's default) against the ImageNet ResNet-18 (--preset quality),
# ECS-Net as the experiment configures it, 8 epochs. Run from the repository root:
#   bash bench/cam-families.sh OUT [ROW...]
# One line per row in OUT/summary.txt: train and inference time and the train-split pseudo-label mIoU at the
# experiment's background score and at the best of the sweep 0.05…0.70 (the masks are read only by the sweep).
# Rows k1-k10 change one knob of the small preset on marks (RESULTS.md, "What the small trunk's CAM lacks on marks");
# their --set goes to both train-cam and infer-cam. The small-preset rows pin PSA's four CAM inference scales, the
# preset's value when they were measured (it now infers at one scale: rows k5, k9 and k10).
set -euo pipefail
out=${1:-runs/cam-families}; shift || true
want=("$@")
mkdir -p "$out"
dotnet build src/EcsNet.Cli -c Release >/dev/null
ecsnet() { dotnet src/EcsNet.Cli/bin/Release/net10.0/ecsnet.dll "$@"; }
# Same size for both: 160 train + 40 val images; parts at 128 px (the demo's family), marks with sides 100-160.
[ -d "$out/parts/VOC2012" ] || ecsnet data synth --out "$out/parts" --images 160 --val 40 --size 128 --seed 5 >/dev/null
[ -d "$out/marks/VOC2012" ] || ecsnet data synth --out "$out/marks" --family marks --images 160 --val 40 --seed 5 >/dev/null
row() {  # row NAME FAMILY PRESET [--set KEY=VALUE...]
  local name=$1 family=$2 preset=$3; shift 3
  local knobs=("$@")
  if [ ${#want[@]} -gt 0 ] && [[ ! " ${want[*]} " == *" $name "* ]]; then return 0; fi
  local run="$out/$name" t0 t1 t2
  rm -rf "$run"; t0=$(date +%s)
  ecsnet train-cam --voc "$out/$family" --out "$run" --preset "$preset" "${knobs[@]}" > "$run.train.log" 2>&1
  t1=$(date +%s)
  ecsnet infer-cam --run "$run" --voc "$out/$family" --split train --out "$run/infer" --sweep "${knobs[@]}" > "$run.infer.log" 2>&1
  t2=$(date +%s)
  echo "$name | train $((t1 - t0)) s | infer $((t2 - t1)) s | at 0.10: $(grep -E '^. *0\.10 ' "$run.infer.log" | tr -d '│|' | awk '{print $2}') | $(grep 'best background' "$run.infer.log") | $family $preset ${knobs[*]}" | tee -a "$out/summary.txt"
}
four=(--set 'camInference.scales=[1,0.5,1.5,2]')
row f1-parts-small   parts small "${four[@]}"
row f2-parts-quality parts quality
row f3-marks-small   marks small "${four[@]}"
row f4-marks-quality marks quality
# one knob at a time, small preset on marks
row k1-marks-small-16ep     marks small --set camTraining.epochs=16 "${four[@]}"
row k2-marks-small-32ep     marks small --set camTraining.epochs=32 "${four[@]}"
row k3-marks-small-nojitter marks small --set augment.brightness=0 --set augment.contrast=0 --set augment.saturation=0 --set augment.hue=0 "${four[@]}"
row k4-marks-small-cam      marks small --set cam.method=cam "${four[@]}"
row k5-marks-small-scale1   marks small --set 'camInference.scales=[1]'
row k6-marks-small-lr01     marks small --set camTraining.learningRate=0.1 "${four[@]}"
row k7-marks-small-lr002    marks small --set camTraining.learningRate=0.02 "${four[@]}"
row k8-marks-small-crop160  marks small --set augment.longEdgeMin=160 --set augment.longEdgeMax=224 --set augment.cropSize=160 --set camTraining.crop=160 "${four[@]}"
row k9-marks-small-16ep-scale1 marks small --set camTraining.epochs=16 --set 'camInference.scales=[1]'
row k10-parts-small-scale1    parts small --set 'camInference.scales=[1]'
