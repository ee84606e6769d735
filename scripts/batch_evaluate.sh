#!/usr/bin/env bash
# Evaluate many results files against one ground truth (loaded once) and write one comparison table,
# sorted by AP (COCO) or mAP (VOC), with a progress bar on stderr. A thin wrapper over `evaluate --batch`.
#
#   scripts/batch_evaluate.sh GROUND_TRUTH RESULTS [OUT_PREFIX] [evaluate options...]
#
#   GROUND_TRUTH  a VOCdevkit/VOC20xx folder or a COCO instances .json file
#   RESULTS       a folder of results .json files, or a text file listing them (one per line)
#   OUT_PREFIX    where the table goes: OUT_PREFIX.md and OUT_PREFIX.csv (default: out/batch_evaluate)
#   further options are passed to evaluate, e.g. --metric coco, --split val, --iou 0.7, --drop-unknown
#
# Example: scripts/batch_evaluate.sh data/VOCdevkit/VOC2007 runs/ out/voc07_runs --split test
# Exits non-zero when any file could not be evaluated (the table still lists the others).
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//'
  exit 2
fi
GT=$1 RESULTS=$2
PREFIX=${3:-out/batch_evaluate}
shift $(( $# >= 3 ? 3 : 2 ))
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
(cd "$ROOT" && swift build -c release --product evaluate 2>&1 | tail -1) >&2
BIN="$(cd "$ROOT" && swift build -c release --show-bin-path)/evaluate"
exec "$BIN" --gt "$GT" --batch "$RESULTS" --markdown "$PREFIX.md" --csv "$PREFIX.csv" "$@"
