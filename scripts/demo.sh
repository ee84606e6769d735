#!/usr/bin/env bash
# The README's first command: installs what is missing, builds in release mode and runs the main job on
# the bundled default. Until the detector's bundled weights land, the bundled default is the demo
# classifier (weights/shapes_resnet8.safetensors, trained by configs/shapes_resnet8.yaml) on the sample
# images in weights/samples/.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product classify
.build/release/classify weights/samples/*.png --weights weights/shapes_resnet8.safetensors --topk 3
