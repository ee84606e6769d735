#!/usr/bin/env bash
# The whole recipe behind the bundled demo detector, as a user would run it:
#   1. make-dataset: a generated detection set (VOC + COCO + object crops), deterministic for the seed;
#   2. train: pretrain a thin ResNet-18 on the object crops (the "ImageNet" stage);
#   3. finetune: a thin ResNet-18-C4 Faster R-CNN from that backbone on the training split, validated on the
#      held-out val split;
#   4. detect + evaluate on the held-out test split (VOC area mAP@0.5 and the COCO numbers).
# Environment: OUT (data folder, default data/synthetic), RUN (run folder, default runs/default),
# IMAGES / VAL / TEST (split sizes), SEED (the data), TRAIN_SEED (pretraining and fine-tuning randomness,
# default 0; another value gives a second model of the same recipe, e.g. for an ensemble), PRETRAIN_ITERS,
# DETECTOR_ITERS (override the recipes), INSTALL=1 to copy the result to weights/detector.safetensors and
# refresh the bundled samples; BIN (a folder of built binaries to use instead of building).
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-data/synthetic}
RUN=${RUN:-runs/default}
IMAGES=${IMAGES:-2000}; VAL=${VAL:-200}; TEST=${TEST:-300}; SEED=${SEED:-2026}; TRAIN_SEED=${TRAIN_SEED:-0}
bash scripts/setup.sh
if [ -z "${BIN:-}" ]; then   # BIN: a folder of already built binaries (so that rebuilding .build cannot touch a run)
    swift build -c release
    BIN=$(swift build -c release --show-bin-path)
fi
mkdir -p "$RUN"
start=$(date +%s)

echo "== 1. data"
"$BIN/make-dataset" --kind detection --out "$OUT" --images "$IMAGES" --val "$VAL" --test "$TEST" --crops --seed "$SEED"
classes=$(paste -sd, "$OUT/VOC/classes.txt")

echo "== 2. pretraining on object crops"
pre=()
[ -n "${PRETRAIN_ITERS:-}" ] && pre=(--iterations "$PRETRAIN_ITERS")
"$BIN/train" --config configs/default_pretrain.yaml --data "$OUT/crops/train" --set "data.val_path=$OUT/crops/val" \
    --set "train.seed=$TRAIN_SEED" "${pre[@]}" --save "$RUN/pretrain.safetensors" --log "$RUN/pretrain_log.jsonl"

echo "== 3. fine-tuning the detector"
det=()
[ -n "${DETECTOR_ITERS:-}" ] && det=(--iterations "$DETECTOR_ITERS")
"$BIN/finetune" --backbone "$RUN/pretrain.safetensors" --config configs/default_detector.yaml --data "$OUT/VOC" \
    --set "data.classes=[$classes]" --set "solver.seed=$TRAIN_SEED" "${det[@]}" --out "$RUN/detector"

echo "== 4. evaluation on the test split"
sed "s|^|$OUT/VOC/JPEGImages/|; s|$|.jpg|" "$OUT/VOC/ImageSets/Main/test.txt" > "$RUN/test_images.txt"
xargs "$BIN/detect" --weights "$RUN/detector/model_final.safetensors" --json "$RUN/test_detections.json" \
    < "$RUN/test_images.txt" > "$RUN/test_detect.log"
"$BIN/evaluate" --gt "$OUT/VOC" --split test --classes "$OUT/VOC/classes.txt" --dets "$RUN/test_detections.json" \
    --metric voc --json "$RUN/test_voc.json" --plots "$RUN/pr"
"$BIN/evaluate" --gt "$OUT/VOC" --split test --classes "$OUT/VOC/classes.txt" --dets "$RUN/test_detections.json" \
    --metric coco --json "$RUN/test_coco.json"
echo "recipe finished in $(( ($(date +%s) - start) / 60 )) min $(( ($(date +%s) - start) % 60 )) s"

if [ "${INSTALL:-0}" = 1 ]; then
    cp "$RUN/detector/model_final.safetensors" weights/detector.safetensors
    cp "$RUN/test_voc.json" weights/detector_test_voc.json
    cp "$RUN/test_coco.json" weights/detector_test_coco.json
    # Samples: of the test images on which the new detector passes detect --expect (the detections drawn,
    # scoring >= 0.5, are exactly the objects: each found with IoU >= 0.7 and the right class, no false
    # positive or duplicate), the two with the most objects
    # (ties in test order).
    rm -f weights/samples/detect_*.jpg weights/samples/detect_*.xml
    : > "$RUN/samples_passing.txt"
    while read -r id; do
        if "$BIN/detect" "$OUT/VOC/JPEGImages/$id.jpg" --weights weights/detector.safetensors \
               --expect "$OUT/VOC/Annotations/$id.xml" > /dev/null 2>&1; then
            echo "$(grep -c '<object>' "$OUT/VOC/Annotations/$id.xml") $id" >> "$RUN/samples_passing.txt"
        fi
    done < "$OUT/VOC/ImageSets/Main/test.txt"
    echo "$(wc -l < "$RUN/samples_passing.txt") of $(wc -l < "$OUT/VOC/ImageSets/Main/test.txt") test images pass the check"
    sort -s -k1,1nr "$RUN/samples_passing.txt" | head -n 2 | while read -r _ id; do
        cp "$OUT/VOC/JPEGImages/$id.jpg" "weights/samples/detect_$id.jpg"
        cp "$OUT/VOC/Annotations/$id.xml" "weights/samples/detect_$id.xml"
    done
    echo "installed weights/detector.safetensors and samples in weights/samples/"
fi
