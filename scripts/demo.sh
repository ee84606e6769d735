#!/usr/bin/env bash
# The README's first command: installs what is missing, builds in release mode and runs the main job on
# the bundled default: `detect` with the bundled detector (weights/detector.safetensors, trained by
# scripts/train_default_detector.sh on the generated shape set) on the bundled sample images, writing
# PNGs with the boxes to out/, printing the detections and checking them against the samples' annotations
# (the detections scoring >= 0.5, which are the ones drawn, are exactly the annotated objects: each found with
# IoU >= 0.7 and the right class, no false positive or duplicate).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product detect
mkdir -p out
.build/release/detect weights/samples/detect_*.jpg --out out/ --expect weights/samples/
echo "open out/*_boxes.png to see the boxes"
