#!/usr/bin/env bash
# The README's first command: installs what is missing, builds in release mode and runs the main job on
# the bundled default: `detect` with the bundled detector (weights/detector.safetensors, trained by
# scripts/train_default_detector.sh on the generated shape set) on the bundled sample images, writing
# PNGs with the boxes to out/ and printing the detections.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product detect
mkdir -p out
.build/release/detect weights/samples/detect_*.jpg --out out/ --score-thresh 0.5
echo "open out/*_boxes.png to see the boxes"
