#!/usr/bin/env bash
# Regenerates the pictures the README shows: `detect` with its defaults (bundled detector, drawing threshold
# 0.5) on the two bundled samples, written to docs/detect_<id>.png. Run after the bundled weights or the
# drawing code change.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
swift build -c release --product detect
for jpg in weights/samples/detect_*.jpg; do
    stem=$(basename "$jpg" .jpg)
    .build/release/detect "$jpg" --out "docs/$stem.png" --expect "${jpg%.jpg}.xml"
done
ls -l docs/detect_*.png
