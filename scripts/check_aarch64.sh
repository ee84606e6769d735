#!/usr/bin/env bash
# Portability check: compiles the C kernels (Sources/CKernels) for aarch64 with the toolchain's clang, so
# that x86-only code stays behind the dispatch layer (cpu.c) and its #if guards. No aarch64 sysroot is
# needed: the host's glibc headers stand in for it, with two x86-only details neutralised in a scratch
# folder. Warnings are errors. Skipped (exit 0, with a note) where clang or the x86-64 headers are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
hdr=/usr/include/x86_64-linux-gnu
if ! command -v clang >/dev/null || [ ! -d "$hdr" ]; then
  echo "check_aarch64: skipped (needs clang and $hdr)"; exit 0
fi
shim=$(mktemp -d)
trap 'rm -rf "$shim"' EXIT
mkdir -p "$shim/gnu" "$shim/bits"
touch "$shim/gnu/stubs-32.h"  # gnu/stubs.h picks the 32-bit stubs when __x86_64__ is not defined
sed 's/__attribute__ ((__regparm__ (1)))//' "$hdr/bits/pthreadtypes-arch.h" > "$shim/bits/pthreadtypes-arch.h"
n=0
for f in Sources/CKernels/*.c; do
  # (the pointer/int cast warnings are off: under the stand-in headers intptr_t is 32 bits wide)
  clang --target=aarch64-linux-gnu -O3 -Wall -Werror -Wno-void-pointer-to-int-cast -Wno-int-to-void-pointer-cast \
    -I Sources/CKernels/include -isystem "$shim" -isystem "$hdr" -c "$f" -o "$shim/$(basename "$f").o"
  file "$shim/$(basename "$f").o" | grep -q "ARM aarch64" || { echo "check_aarch64: $f did not give aarch64 code"; exit 1; }
  n=$((n + 1))
done
echo "check_aarch64: $n C kernel files compile for aarch64"
