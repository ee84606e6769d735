#!/usr/bin/env bash
# Inference against the fastest CPU engine people use: ours, PyTorch and ONNX Runtime on the same computations,
# same machine, same run, same thread count, RUNS times each (default 3), medians and ratios:
#   ResNet-101 224x224 batch 1 (logits);
#   R101-C4 trunk (conv1 .. layer3) on 600x1000, the RPN head on its map, the res5 head on 300 RoIs of 14x14;
#   our whole `detect` of a 1000x600 image beside them;
# and each network's GFLOP/s against the sgemm ceiling and the FMA peak measured in the same run (`bench ceiling`).
# The ONNX side (scripts/bench/ort_bench.py) exports the torchvision-structured models of the PyTorch scripts
# (opset 17) and runs them with onnxruntime's CPU provider. Usage:
#
#   bash scripts/bench_ort.sh            # the best path this CPU has
#   bash scripts/bench_ort.sh avx2       # our AVX2 path forced, PyTorch capped likewise (ONNX Runtime cannot be)
#
# ORT_VENV: the throwaway virtual environment for torch + onnx + onnxruntime (default /opt/ortenv; created on
# first use from the torch CPU wheel found on this machine, or PyPI's, plus onnx and onnxruntime from PyPI).
# TORCH_PYTHON: the Python with torch for the PyTorch side (default /opt/torchenv/bin/python, else the ORT venv).
set -euo pipefail
cd "$(dirname "$0")/.."
RUNS=${RUNS:-3}
VENV=${ORT_VENV:-/opt/ortenv}
BUILD=${BUILD_PATH:-.build}
case "${1:-}" in
  "") ;;
  avx2) export ENGINE_ISA=avx2 OPENBLAS_CORETYPE=Haswell ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2 \
          MKL_ENABLE_INSTRUCTIONS=AVX2 ;;
  *) echo "bench_ort.sh: unknown instruction set '$1' (avx2, or nothing for the best)" >&2; exit 2 ;;
esac
if ! "$VENV/bin/python" -c "import onnxruntime, onnx, torch" 2>/dev/null; then
  echo "bench_ort.sh: creating $VENV (torch CPU, onnx, onnxruntime)" >&2
  python3 -m venv "$VENV"
  wheel=$(find / -maxdepth 3 -name 'torch-*cpu*.whl' 2>/dev/null | head -n 1 || true)
  "$VENV/bin/pip" install -q ${wheel:-torch} onnx onnxruntime numpy pillow safetensors
fi
PY=${TORCH_PYTHON:-/opt/torchenv/bin/python}
[ -x "$PY" ] || PY="$VENV/bin/python"
swift build -c release --build-path "$BUILD" --product bench >/dev/null
out=$(mktemp -d)
threads=$(nproc)
for run in $(seq 1 "$RUNS"); do
  echo "run $run of $RUNS" >&2
  "$BUILD/release/bench" ceiling --json "$out/ours_ceiling_$run.json" >&2
  "$BUILD/release/bench" resnet --iters 5 --only r101 --json "$out/ours_resnet_$run.json" >&2
  "$BUILD/release/bench" detector --iters 3 --json "$out/ours_detector_$run.json" >&2
  "$PY" scripts/bench/resnet_torch.py --iters 5 --threads "$threads" --only r101 > "$out/torch_resnet_$run.json"
  "$PY" scripts/bench/detector_torch.py --iters 3 --threads "$threads" > "$out/torch_detector_$run.json"
  "$VENV/bin/python" scripts/bench/ort_bench.py --iters 5 --threads "$threads" > "$out/ort_$run.json"
done
"$VENV/bin/python" - "$out" "$RUNS" <<'PYEOF'
import json, os, statistics, sys
d, runs = sys.argv[1], int(sys.argv[2])
def load(side, run):
    r = {}
    for part in ["ceiling", "resnet", "detector", ""]:
        p = os.path.join(d, f"{side}_{part}_{run}.json" if part else f"{side}_{run}.json")
        if os.path.exists(p): r.update(json.load(open(p)))
    return r
ours = [load("ours", k) for k in range(1, runs + 1)]
torch = [load("torch", k) for k in range(1, runs + 1)]
ort = [load("ort", k) for k in range(1, runs + 1)]
med = lambda rs, k: statistics.median(r[k] for r in rs) if all(k in r for r in rs) else None
ceiling, peak = med(ours, "sgemm_ceiling_gflops"), med(ours, "fma_peak_gflops")
print(f"CPU: {ours[0].get('cpu', '?')}; our kernels: {ours[0].get('isa', '?')}; ONNX Runtime "
      f"{ort[0].get('onnxruntime_version', '?')}; {ort[0].get('threads', '?')} threads; {runs} runs, medians")
print(f"ceilings measured in the same runs: our sgemm 2048^3 {ceiling:.1f} GFLOP/s, FMA peak {peak:.1f} GFLOP/s\n")
# (name, our key, PyTorch key, ORT keys summed, GFLOP key of the ORT side)
rows = [("ResNet-101 224x224, batch 1", ["r101_infer_s"], ["r101_infer_s"], ["r101_s"], ["r101_gflop"]),
        ("R101-C4 trunk, 600x1000", ["trunk_s"], ["trunk_s"], ["trunk_s"], ["trunk_gflop"]),
        ("RPN head on the 38x63 map", ["rpn_s"], ["rpn_s"], ["rpn_s"], ["rpn_gflop"]),
        ("res5 head, 300 RoIs of 14x14", ["head_s"], ["head_s"], ["head_s"], ["head_gflop"]),
        ("trunk + res5 head", ["trunk_s", "head_s"], ["trunk_s", "head_s"], ["trunk_s", "head_s"],
         ["trunk_gflop", "head_gflop"])]
print("| workload | ours (s) | PyTorch (s) | ONNX Runtime (s) | ours / ORT | ours / PyTorch | GFLOP | ours GFLOP/s "
      "| % of sgemm ceiling | ORT GFLOP/s |")
print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
for name, ok, tk, rk, gk in rows:
    o = [sum(r[k] for k in ok) for r in ours]; t = [sum(r[k] for k in tk) for r in torch]
    e = [sum(r[k] for k in rk) for r in ort]; g = sum(ort[0][k] for k in gk)
    mo, mt, me = statistics.median(o), statistics.median(t), statistics.median(e)
    print(f"| {name} | {mo:.3f} | {mt:.3f} | {me:.3f} | {mo / me:.2f}x | {mo / mt:.2f}x | {g:.1f} | {g / mo:.0f} "
          f"| {100 * g / mo / ceiling:.0f}% | {g / me:.0f} |")
print(f"| R101-C4 trunk + RPN head + RoI pooling + res5 head | {med(ours, 'c4_forward_s'):.3f} "
      f"| {med(torch, 'c4_forward_s'):.3f} | | | {med(ours, 'c4_forward_s') / med(torch, 'c4_forward_s'):.2f}x | | | | |")
print(f"| our whole detect() of a 1000x600 image (300 proposals) | {med(ours, 'detect_s'):.3f} | | | | | | | | |")
print("\nper-run ours / ORT: " + "; ".join(
    f"{k}: " + ", ".join(f"{o[a] / e[b]:.2f}" for o, e in zip(ours, ort))
    for k, a, b in [("r101", "r101_infer_s", "r101_s"), ("trunk", "trunk_s", "trunk_s"), ("head", "head_s", "head_s")]))
PYEOF
