#!/usr/bin/env bash
# The README's "Ensembles and test-time augmentation, measured" rows for detection: the bundled detector, a second
# detector, their ensemble, the ensemble with box voting, and test-time augmentation (default sides, mirrored) of
# the bundled detector and of the ensemble, each scored on the recipe's held-out test split (VOC
# area mAP@0.5, then the COCO numbers of the same detections), with the time per image of `detect` over the first
# 40 test images (model loading included). Usage:
#
#   bash scripts/measure_ensemble.sh SECOND.safetensors [VOC_FOLDER] [OUT_FOLDER]
#
# VOC_FOLDER defaults to the recipe's output (data/recipe/VOC, see scripts/train_default_detector.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
second=${1:?usage: measure_ensemble.sh SECOND.safetensors [VOC_FOLDER] [OUT_FOLDER]}
gt=${2:-data/recipe/VOC}
out=${3:-$(mktemp -d)}
mkdir -p "$out"
bundled=weights/detector.safetensors
swift build -c release --product evaluate --product detect >/dev/null
images=$(mktemp -d)
head -n 40 "$gt/ImageSets/Main/test.txt" | while read -r id; do cp "$gt/JPEGImages/$id.jpg" "$images/"; done
row() {  # name, passes, evaluate/detect arguments...
  local name=$1 passes=$2; shift 2
  .build/release/evaluate --gt "$gt" --split test "$@" --metric voc --json "$out/$name.voc.json" \
    --save-dets "$out/$name.dets.json" >/dev/null
  .build/release/evaluate --gt "$gt" --split test --dets "$out/$name.dets.json" --metric coco \
    --json "$out/$name.coco.json" >/dev/null
  local t0 t1
  t0=$(date +%s.%N)
  .build/release/detect "$images" "$@" --json "$out/$name.detect.json" >/dev/null
  t1=$(date +%s.%N)
  python3 - "$out/$name" "$passes" "$t0" "$t1" "$name" <<'PYEOF'
import json, sys
base, passes, t0, t1, name = sys.argv[1], sys.argv[2], float(sys.argv[3]), float(sys.argv[4]), sys.argv[5]
v, c = json.load(open(base + ".voc.json")), json.load(open(base + ".coco.json"))
print(f"| {name} | {passes} | {v['mAP']:.3f} | {c['AP']:.3f} | {c['AP50']:.3f} | {c['AP75']:.3f} | {c['APs']:.3f} "
      f"| {(t1 - t0) / 40:.2f} |")
PYEOF
}
echo "| detection | passes | VOC area mAP@0.5 | COCO AP | AP50 | AP75 | APs | s / image |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|"
row bundled 1 --weights "$bundled"
row second 1 --weights "$second"
row ensemble 2 --weights "$bundled" --weights "$second"
row ensemble-box-voting 2 --weights "$bundled" --weights "$second" --box-voting
row bundled-tta 6 --weights "$bundled" --tta
row ensemble-tta-box-voting 12 --weights "$bundled" --weights "$second" --tta --box-voting
echo "(outputs in $out)" >&2
