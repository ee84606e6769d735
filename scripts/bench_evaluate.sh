#!/usr/bin/env bash
# Benchmark: COCO box evaluation of `evaluate` (release) against pycocotools on the same synthetic input,
# in the same run. Also checks that the 12 numbers agree (within 1e-6).
#
#   scripts/bench_evaluate.sh [IMAGES] [DETS_PER_IMAGE] [CATEGORIES]      (default 5000 100 20)
#
# Needs a Python with numpy and pycocotools (PYTHON, default /opt/torchenv/bin/python); it is used only to
# make the input and to time the reference, never by the package. Input and outputs go to out/bench_evaluate/.
# Method: wall time of the whole `evaluate` process (start, reading both files, evaluation, report), best of
# 3 runs; pycocotools timed in-process from COCO(gt) to summarize() (its interpreter start and imports are
# not counted), one run. Results are recorded in docs/PERFORMANCE.md, section "Box evaluation (COCO)".
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-/opt/torchenv/bin/python}
IMAGES=${1:-5000}
DETS=${2:-100}
CATEGORIES=${3:-20}
OUT=out/bench_evaluate
mkdir -p "$OUT"

echo "== input: $IMAGES images x $DETS detections, $CATEGORIES categories"
"$PYTHON" scripts/bench_evaluate.py generate "$OUT" --images "$IMAGES" --dets-per-image "$DETS" --categories "$CATEGORIES"

echo "== build (release)"
swift build -c release --product evaluate 2>&1 | tail -1
BIN="$(swift build -c release --show-bin-path)/evaluate"

echo "== evaluate (best of 3; $(nproc) cores)"
best=""
for run in 1 2 3; do
  start=$(date +%s.%N)
  "$BIN" --gt "$OUT/gt.json" --dets "$OUT/dets.json" --metric coco --json "$OUT/ours.json" >"$OUT/ours.txt" 2>"$OUT/ours.log"
  end=$(date +%s.%N)
  t=$(echo "$end - $start" | bc -l)
  printf "run %d: %.2f s  (%s)\n" "$run" "$t" "$(tr '\n' ';' <"$OUT/ours.log")"
  if [ -z "$best" ] || [ "$(echo "$t < $best" | bc -l)" = 1 ]; then best=$t; fi
done

echo "== pycocotools"
"$PYTHON" scripts/bench_evaluate.py pycocotools "$OUT/gt.json" "$OUT/dets.json" "$OUT/pycocotools.json" | grep -v "^ Average"
reference=$("$PYTHON" -c "import json; print(json.load(open('$OUT/pycocotools.json'))['seconds']['total'])")

echo "== result"
"$PYTHON" scripts/bench_evaluate.py compare "$OUT/pycocotools.json" "$OUT/ours.json"
printf "pycocotools %.2f s, evaluate %.2f s: %.3fx pycocotools' time (%.0fx faster)\n" \
  "$reference" "$best" "$(echo "$best / $reference" | bc -l)" "$(echo "$reference / $best" | bc -l)"
