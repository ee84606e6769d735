#!/usr/bin/env bash
# Killed-run soak (not part of CI): fine-tunes a small detector once without interruption, then again while
# killing it with SIGKILL at random moments (KILLS times, default 20) and continuing each time with
# --resume from the run folder's checkpoint. Passes when the final weights are byte-identical to the
# uninterrupted run's and no temporary file is left in the run folder.
# Environment: KILLS (default 20), ITERS (default 200), BIN (built binaries; default: swift build -c release).
set -euo pipefail
cd "$(dirname "$0")/.."
KILLS=${KILLS:-20}; ITERS=${ITERS:-200}
if [ -z "${BIN:-}" ]; then swift build -c release --product finetune --product make-dataset >/dev/null; BIN=.build/release; fi
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
"$BIN/make-dataset" --kind detection --out "$work/data" --images 8 --test 2 --seed 5 >/dev/null
classes=$(paste -sd, "$work/data/VOC/classes.txt")
args=(--config configs/detector_r18_small.yaml --data "$work/data/VOC" --iterations "$ITERS"
      --set "data.classes=[$classes]" --set data.split=train --set data.val_split= --set solver.checkpoint_every=2
      --set solver.warmup_iterations=10 --set "solver.milestones=[40]" --set "solver.scales=[256]"
      --set detector.input.min_size=256 --set "detector.backbone.widths=[8, 16, 32, 64]" --set detector.backbone.stem_width=8)
echo "== uninterrupted run"
"$BIN/finetune" "${args[@]}" --out "$work/straight" >/dev/null 2>&1
echo "== run killed $KILLS times"
killed=0
while [ ! -f "$work/killed/model_final.safetensors" ]; do
    resume=(); [ -f "$work/killed/checkpoint.safetensors" ] && resume=(--resume "$work/killed/checkpoint.safetensors")
    "$BIN/finetune" "${args[@]}" "${resume[@]}" --out "$work/killed" >/dev/null 2>&1 &
    pid=$!
    if [ "$killed" -lt "$KILLS" ]; then
        sleep "$(awk -v s="$RANDOM" 'BEGIN { srand(s); printf "%.2f", 0.2 + rand() * 1.2 }')"
        kill -9 "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
        # Counted only when the kill interrupted the run (it had not finished by itself).
        if [ ! -f "$work/killed/model_final.safetensors" ]; then killed=$((killed + 1)); echo "  killed run $killed"; fi
    else
        wait "$pid"
    fi
done
left=$(find "$work/killed" -name '.*.tmp-*' | wc -l)
if cmp -s "$work/straight/model_final.safetensors" "$work/killed/model_final.safetensors" && [ "$left" -eq 0 ]; then
    echo "PASS: $killed SIGKILLs, final weights byte-identical to the uninterrupted run, no temporary files left"
else
    echo "FAIL: weights identical: $(cmp -s "$work/straight/model_final.safetensors" "$work/killed/model_final.safetensors" && echo yes || echo no), temporary files left: $left"
    exit 1
fi
