#!/usr/bin/env bash
# The issue-table benchmarks on one instruction-set path, ours and PyTorch in the same run, RUNS times each
# (default 3), and the median of each measurement with its ratio: CIFAR ResNet-20/110 training steps,
# ResNet-101 inference and training step (time, peak RSS), the R101-C4 detector forward and a fine-tuning
# iteration (time, peak RSS). Usage:
#
#   bash scripts/bench_isa.sh            # the best path this CPU has
#   bash scripts/bench_isa.sh avx2       # force the AVX2 path (on an AVX-512 CPU)
#   bash scripts/bench_isa.sh baseline   # force the baseline path
#
# A forced path caps both sides at that instruction set, so that they run the same computation: ours with
# ENGINE_ISA (and OpenBLAS, which our GEMM uses at the baseline level, with OPENBLAS_CORETYPE), PyTorch with
# ATEN_CPU_CAPABILITY, ONEDNN_MAX_CPU_ISA and MKL_ENABLE_INSTRUCTIONS. ONLY=resnet,detector,finetune picks a
# subset; TORCH_PYTHON the Python with torch (default /opt/torchenv/bin/python).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
RUNS=${RUNS:-3}
ONLY=${ONLY:-resnet,detector,finetune}
ISA=${1:-}
BUILD=${BUILD_PATH:-.build}
case "$ISA" in
  "") ;;
  avx512) export ENGINE_ISA=avx512 ;;
  avx2) export ENGINE_ISA=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
          MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
  baseline) export ENGINE_ISA=baseline OPENBLAS_CORETYPE=Nehalem ATEN_CPU_CAPABILITY=default \
              ONEDNN_MAX_CPU_ISA=SSE41 MKL_ENABLE_INSTRUCTIONS=SSE4_2 ;;
  *) echo "bench_isa.sh: unknown instruction set '$ISA' (avx512, avx2 or baseline)" >&2; exit 2 ;;
esac
swift build -c release --build-path "$BUILD" --product bench >/dev/null
out=$(mktemp -d)
threads=$(nproc)
has() { [[ ",$ONLY," == *",$1,"* ]]; }
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS" >&2
  if has resnet; then
    "$BUILD/release/bench" resnet --iters 5 --only r20,r110,r101 --json "$out/ours_resnet_$run.json" >&2
    "$BUILD/release/bench" resnet --only r101train --json "$out/ours_r101train_$run.json" >&2
    "$PY" scripts/bench/resnet_torch.py --iters 5 --threads "$threads" --only r20,r110,r101 > "$out/torch_resnet_$run.json"
    "$PY" scripts/bench/resnet_torch.py --threads "$threads" --only r101train > "$out/torch_r101train_$run.json"
  fi
  if has detector; then
    "$BUILD/release/bench" detector --iters 3 --json "$out/ours_detector_$run.json" >&2
    "$PY" scripts/bench/detector_torch.py --iters 3 --threads "$threads" > "$out/torch_detector_$run.json"
  fi
  if has finetune; then
    "$BUILD/release/bench" finetune --iters 3 --json "$out/ours_finetune_$run.json" >&2
    "$PY" scripts/bench/finetune_torch.py --iters 3 --threads "$threads" > "$out/torch_finetune_$run.json"
  fi
done
"$PY" - "$out" "$RUNS" <<'PYEOF'
import json, os, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
def load(side, run):
    r = {}
    for part in ["resnet", "r101train", "detector", "finetune"]:
        p = os.path.join(d, f"{side}_{part}_{run}.json")
        if os.path.exists(p): r.update(json.load(open(p)))
    return r
ours = [load("ours", k) for k in range(1, runs + 1)]
torch = [load("torch", k) for k in range(1, runs + 1)]
print(f"CPU: {ours[0].get('cpu', '?')}; our kernels: {ours[0].get('isa', '?')}; {runs} runs, medians\n")
rows = [("CIFAR ResNet-20 training step, batch 128 (s)", "r20_train_step_s"),
        ("CIFAR ResNet-110 training step, batch 128 (s)", "r110_train_step_s"),
        ("ResNet-101 inference 224x224, batch 1 (s)", "r101_infer_s"),
        ("ResNet-101 training step, batch 8 (s)", "r101_train_b8_s"),
        ("ResNet-101 training step, batch 8: peak RSS (MB)", "r101_train_b8_peak_rss_mb"),
        ("R101-C4 600x1000, 300 proposals (s)", "c4_forward_s"),
        ("R101-C4 fine-tuning iteration, 128 RoIs (s)", "finetune_iter_s"),
        ("R101-C4 fine-tuning: peak RSS (MB)", "peak_rss_mb")]
print("| workload | ours | PyTorch | ours / PyTorch | ratios of the runs |")
print("|---|---:|---:|---:|---|")
for name, k in rows:
    o = [r[k] for r in ours if k in r]; t = [r[k] for r in torch if k in r]
    if not o or not t: continue
    # peak_rss_mb is written by both the detector and the fine-tuning runs: take the fine-tuning one.
    if k == "peak_rss_mb":
        o = [json.load(open(os.path.join(d, f"ours_finetune_{i}.json")))[k] for i in range(1, runs + 1)
             if os.path.exists(os.path.join(d, f"ours_finetune_{i}.json"))]
        t = [json.load(open(os.path.join(d, f"torch_finetune_{i}.json")))[k] for i in range(1, runs + 1)
             if os.path.exists(os.path.join(d, f"torch_finetune_{i}.json"))]
        if not o or not t: continue
    mo, mt = statistics.median(o), statistics.median(t)
    each = ", ".join(f"{a / b:.2f}" for a, b in zip(o, t))
    fmt = "{:.0f}" if "MB" in name else "{:.3f}"
    print(f"| {name} | {fmt.format(mo)} | {fmt.format(mt)} | {mo / mt:.2f}x | {each} |")
PYEOF
