#!/usr/bin/env bash
# Scale-out benchmark (not in CI): data-parallel fine-tuning of the R18-small recipe (configs/detector_r18_small.yaml,
# 2 images per step, one per forward pass) on a generated VOC set, as 1 process x 2 threads and as 2 processes x
# 1 thread, in images per second; and the per-step gradient all-reduce of ResNet-101 (44.5M floats) over 2
# processes. Rates exclude start-up: each mode runs WARM and WARM + ITERS iterations and the difference is timed.
set -euo pipefail
cd "$(dirname "$0")/.."
ITERS=${ITERS:-10}; WARM=${WARM:-2}
BUILD=${BUILD_PATH:-.build}
swift build -c release --build-path "$BUILD" --product finetune >/dev/null
swift build -c release --build-path "$BUILD" --product make-dataset >/dev/null
swift build -c release --build-path "$BUILD" --product bench >/dev/null
B="$BUILD/release"
WORK=$(mktemp -d); trap 'rm -rf "$WORK"' EXIT
"$B/make-dataset" --kind detection --out "$WORK/data" --images 32 --val 0 --test 0 >/dev/null
MPI=(mpirun --allow-run-as-root --oversubscribe)
args() { echo --config configs/detector_r18_small.yaml --data "$WORK/data/VOC" --out "$WORK/run-$1" --iterations "$2" \
  --set data.split=train --set data.val_split= --set solver.ims_per_batch=2 --set solver.images_per_forward=1 \
  --set solver.checkpoint_every=0 --threads "$3"; }
wall() { local s e; s=$(date +%s.%N); "$@" >/dev/null 2>&1; e=$(date +%s.%N); echo "$e - $s" | bc -l; }
rate() {  # mode, launcher..., -- threads
  local mode=$1 threads=$2; shift 2
  local t0 t1
  t0=$(wall "$@" $B/finetune $(args "$mode-a" "$WARM" "$threads"))
  t1=$(wall "$@" $B/finetune $(args "$mode-b" $((WARM + ITERS)) "$threads"))
  echo "scale=3; 2 * $ITERS / ($t1 - $t0)" | bc -l
}
echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(nproc) cores; $(mpirun --version | head -1)"
one=$(rate one 2 env)
two=$(rate two 1 "${MPI[@]}" -np 2 --bind-to core)
echo "R18-small fine-tuning (320 px, 2 images per step), $ITERS steps after $WARM:"
echo "  1 process  x 2 threads: $one img/s"
echo "  2 processes x 1 thread : $two img/s  ($(echo "scale=2; $two / $one" | bc -l)x)"
"${MPI[@]}" -np 2 --bind-to none "$B/bench" allreduce --arch resnet101 --iters "${AR_ITERS:-5}"
