#!/usr/bin/env bash
# Conv benchmark: the engine (release build) and PyTorch on the same shapes, same machine, same run.
# PyTorch comes from a throwaway virtualenv (default /opt/torchenv; set TORCH_PYTHON to another python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
BUILD=${BUILD_PATH:-.build}   # BUILD_PATH: another build folder (e.g. while .build is in use)
swift build -c release --build-path "$BUILD" --product bench >/dev/null
out=$(mktemp -d)
"$BUILD/release/bench" conv --iters "${ITERS:-5}" --json "$out/swift.json"
echo
"$PY" scripts/bench/conv_torch.py "$out/swift.json" --iters "${ITERS:-5}" --threads "$(nproc)"
