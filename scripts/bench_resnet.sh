#!/usr/bin/env bash
# Whole-network benchmark: the engine (release) and PyTorch on the same computations, same machine, same
# run. Each measurement that reports peak memory runs in its own process.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
ITERS=${ITERS:-5}
BUILD=${BUILD_PATH:-.build}   # BUILD_PATH: another build folder (e.g. while .build is in use)
swift build -c release --build-path "$BUILD" --product bench >/dev/null
out=$(mktemp -d)
"$BUILD/release/bench" resnet --iters "$ITERS" --only r20,r110,r101 --json "$out/ours1.json"
"$BUILD/release/bench" resnet --only r101train --json "$out/ours2.json"
"$PY" scripts/bench/resnet_torch.py --iters "$ITERS" --threads "$(nproc)" --only r20,r110,r101 > "$out/torch1.json"
"$PY" scripts/bench/resnet_torch.py --threads "$(nproc)" --only r101train > "$out/torch2.json"
"$PY" - "$out" <<'PYEOF'
import json, sys, os
d = sys.argv[1]
ours = {**json.load(open(os.path.join(d, "ours1.json"))), **json.load(open(os.path.join(d, "ours2.json")))}
torch = {**json.load(open(os.path.join(d, "torch1.json"))), **json.load(open(os.path.join(d, "torch2.json")))}
rows = [("CIFAR ResNet-20 training step, batch 128 (s)", "r20_train_step_s"),
        ("CIFAR ResNet-110 training step, batch 128 (s)", "r110_train_step_s"),
        ("ResNet-101 inference 224x224, batch 1 (s)", "r101_infer_s"),
        ("ResNet-101 training step 224x224, batch 8 (s)", "r101_train_b8_s"),
        ("ResNet-101 training step, batch 8: process peak RSS (MB)", "r101_train_b8_peak_rss_mb")]
print("| measurement | ours | PyTorch | ours / PyTorch |")
print("|---|---:|---:|---:|")
for name, k in rows:
    o, t = ours.get(k), torch.get(k)
    if o is None or t is None: continue
    print(f"| {name} | {o:.3f} | {t:.3f} | {o / t:.2f}x |")
if "r101_train_b8_peak_tensor_mb" in ours:
    print(f"\n(ours: peak memory held by tensors during that step: {ours['r101_train_b8_peak_tensor_mb']:.0f} MB)")
PYEOF
