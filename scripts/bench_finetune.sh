#!/usr/bin/env bash
# Fine-tuning benchmark: one R101-C4 iteration at 600x1000, batch 1, 128 RoIs, ours and PyTorch's, each in
# its own process (peak memory).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
BUILD=${BUILD_PATH:-.build}   # BUILD_PATH: another build folder (e.g. while .build is in use)
swift build -c release --build-path "$BUILD" --product bench >/dev/null
"$BUILD/release/bench" finetune --iters "${ITERS:-3}"
"$PY" scripts/bench/finetune_torch.py --iters "${ITERS:-3}" --threads "$(nproc)"
