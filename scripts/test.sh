#!/usr/bin/env bash
# The test command: installs what is missing, builds in release mode and runs the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
python3 scripts/check_test_assertions.py   # every test can fail on a wrong value
python3 scripts/check_layering.py          # imports point down docs/ARCHITECTURE.md's layers
python3 scripts/check_line_length.py       # lines of at most 120 characters (.swift-format)
bash scripts/check_aarch64.sh              # the C kernels compile for aarch64 (x86 code stays dispatched)
swift build -c release --build-tests
swift test -c release --skip-build --disable-swift-testing "$@"
