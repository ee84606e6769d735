#!/usr/bin/env bash
# Idempotent set-up: installs the system libraries the package links against, when missing.
set -euo pipefail
need=()
pkgs=(libopenblas-dev libjpeg-dev libpng-dev pkg-config openmpi-bin libopenmpi-dev)   # MPI: mpirun jobs (README)
command -v python3 >/dev/null || pkgs+=(python3)   # scripts/check_test_assertions.py
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || need+=("$p")
done
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v swift >/dev/null || { echo "setup: swift is not on PATH (Swift 6.x toolchain required)" >&2; exit 1; }
