#!/usr/bin/env bash
# CAM ablation on a synthetic set (docs/RESULTS.md, "CAM network ablation"). Run from the repository root:
#   bash bench/cam-ablation.sh OUT
# Builds ecsnet once, generates the 96-px set, then trains and scores each row; one line per row in OUT/summary.txt.
set -euo pipefail
out=${1:-runs/cam-ablation}
mkdir -p "$out"
dotnet build src/EcsNet.Cli -c Release >/dev/null
ecsnet() { dotnet src/EcsNet.Cli/bin/Release/net10.0/ecsnet.dll "$@"; }
[ -d "$out/data/VOC2012" ] || ecsnet data synth --out "$out/data" --images 160 --val 40 --size 96 --seed 2 >/dev/null
# PSA's four CAM inference scales, with which the published rows were measured (the small preset now infers at one)
common=(camTraining.crop=96 augment.longEdgeMin=80 augment.longEdgeMax=112 camTraining.warmupSteps=10 'camInference.scales=[1,0.5,1.5,2]')
row() {  # row NAME METHOD [--set values...]
  local name=$1 method=$2; shift 2
  local run="$out/$name" t0 t1 t2
  rm -rf "$run"; t0=$(date +%s)
  ecsnet train-cam --voc "$out/data" --out "$run" --method "$method" --set "${common[@]}" "$@" > "$run.train.log" 2>&1
  t1=$(date +%s)
  ecsnet infer-cam --run "$run" --voc "$out/data" --split train --out "$run/infer" --sweep > "$run.infer.log" 2>&1
  t2=$(date +%s)
  echo "$name | train $((t1 - t0)) s | infer $((t2 - t1)) s | $(grep 'best background' "$run.infer.log") | $method $*" | tee -a "$out/summary.txt"
}
erase=(cam.useCe=false cam.refineClassification=false cam.beta=1 cam.overlay=false)
cece=(cam.ceOn=cam cam.refineLogitScale=10 cam.backgroundCeThreshold=0.1 cam.beta=1 cam.overlay=false)
row r1-cam cam
row r2-erase ecs "${erase[@]}"
row r3-ce ecs cam.beta=1 cam.overlay=false
row r4-full ecs
row r5-pcm-refine ecs cam.refineLogitScale=10 cam.backgroundCeThreshold=0.1 cam.inference=refine
row r6-ce-on-cam ecs "${cece[@]}"
row r7-ce-on-cam-overlay ecs cam.ceOn=cam cam.refineLogitScale=10 cam.backgroundCeThreshold=0.1 cam.beta=1
row r9-cam-24ep cam camTraining.epochs=24
row r10-erase-24ep ecs camTraining.epochs=24 "${erase[@]}"
row r11-ce-on-cam-late-24ep ecs camTraining.epochs=24 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3
row r12-erase-d08-24ep ecs camTraining.epochs=24 cam.delta=0.8 "${erase[@]}"
row r13-ce-on-cam-late-d08-24ep ecs camTraining.epochs=24 cam.delta=0.8 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3
row r14-ce-on-cam-late-d09-24ep ecs camTraining.epochs=24 cam.delta=0.9 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3
row r15-ce-on-cam-late-d08-norefcls-24ep ecs camTraining.epochs=24 cam.delta=0.8 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3 cam.refineClassification=false
row r16-r13-overlay123-24ep ecs camTraining.epochs=24 cam.delta=0.8 cam.ceOn=cam cam.refineLogitScale=10 cam.backgroundCeThreshold=0.1 cam.beta=1 cam.ceStartStep=240 cam.ceWeight=0.3 cam.overlay=true "cam.overlayRates=[1,2,3]"
row r17-r13-overlay12-24ep ecs camTraining.epochs=24 cam.delta=0.8 cam.ceOn=cam cam.refineLogitScale=10 cam.backgroundCeThreshold=0.1 cam.beta=1 cam.ceStartStep=240 cam.ceWeight=0.3 cam.overlay=true "cam.overlayRates=[1,2]"
row r18-r11-w05-24ep ecs camTraining.epochs=24 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.5
row r19-r11-start360-24ep ecs camTraining.epochs=24 "${cece[@]}" cam.ceStartStep=360 cam.ceWeight=0.3
row r20-r11-d07-24ep ecs camTraining.epochs=24 cam.delta=0.7 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3
row r21-cam-24ep-seed1 cam camTraining.epochs=24 camTraining.seed=1
row r22-r11-seed1-24ep ecs camTraining.epochs=24 camTraining.seed=1 "${cece[@]}" cam.ceStartStep=240 cam.ceWeight=0.3
