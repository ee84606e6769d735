#!/usr/bin/env bash
# Detector benchmark: ResNet-101-C4 at 600x1000 with 300 proposals, ours (release) and PyTorch (same
# machine, same run; each in its own process for the peak-memory figure).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
BUILD=${BUILD_PATH:-.build}   # BUILD_PATH: another build folder (e.g. while .build is in use)
swift build -c release --build-path "$BUILD" --product bench >/dev/null
out=$(mktemp -d)
"$BUILD/release/bench" detector --iters "${ITERS:-3}" --json "$out/ours.json"
"$PY" scripts/bench/detector_torch.py --iters "${ITERS:-3}" --threads "$(nproc)" | tee "$out/torch.json"
