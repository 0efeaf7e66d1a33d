#!/usr/bin/env bash
# Runs on the lent GPU machine (the device tool), from the repository root, with build/ and .gl/
# carried from a Debian 12 build: unpacks the Vulkan loader, calibrates the GPU, runs the matvec
# suite's Vulkan rows and the kernel tests on that host (its CPU has AVX-512), results in $OUT.
#   scripts/device-run.sh [extra kbench args...]
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/kblib; for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/kblib; done
# hwloc and cmocka from Debian, beside the host's own libraries (never over them)
export LD_LIBRARY_PATH=/tmp/kblib/usr/lib/x86_64-linux-gnu
ldd build/kbench | grep -q "libudev.so.1 => not found" &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/kblib/lib/x86_64-linux-gnu
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)"; } > "$OUT/machine.txt" 2>&1
./build/kbench --list > "$OUT/list.txt" 2>&1
(cd build/tests && for t in test_impls test_impls_affine test_attention test_vulkan; do
   [ -x $t ] && { KBENCH=../kbench ./$t; echo "$t exit $?"; }; done) > "$OUT/tests.txt" 2>&1
./build/kbench calibrate --threads 1,16 -o "$OUT/calibration.json" > "$OUT/calibrate.txt" 2>&1
./build/kbench --suite matvec --impl '^vk$' -q --csv -o "$OUT/matvec_vk.csv" --json "$OUT/matvec_vk.json" \
  --calibration "$OUT/calibration.json" "$@"
echo "suite exit $?"
cat "$OUT/machine.txt" "$OUT/calibrate.txt"; grep -E "exit|FAIL|ERROR|PASSED|SKIPPED" "$OUT/tests.txt"
grep -E "^read|14336 cols=4096 tokens=1,|128256" "$OUT/matvec_vk.csv" | cut -d, -f1,3,4,7,14,23,25
