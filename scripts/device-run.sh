#!/usr/bin/env bash
# Runs on the lent GPU machine (the device tool), from the repository root, with build/ and .gl/
# carried from a Debian 12 build: unpacks the Vulkan loader, runs the matvec suite's Vulkan rows
# and the CPU kernel tests (that host's CPU may have AVX-512), and leaves results in $OUT.
#   scripts/device-run.sh [extra kbench args...]
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/kblib; for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/kblib; done
# hwloc from Debian, beside the host's own libraries (never over them)
export LD_LIBRARY_PATH=/tmp/kblib/usr/lib/x86_64-linux-gnu
ldd build/kbench | grep -q "libudev.so.1 => not found" &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/kblib/lib/x86_64-linux-gnu:/tmp/kblib/usr/lib/x86_64-linux-gnu
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
{ nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | cut -c1-400; } > "$OUT/machine.txt" 2>&1
./build/kbench --list > "$OUT/list.txt" 2>&1
(cd build/tests && KBENCH=../kbench ./test_impls && KBENCH=../kbench ./test_vulkan) > "$OUT/tests.txt" 2>&1
echo "tests exit $?" >> "$OUT/tests.txt"
./build/kbench --suite matvec --impl '^vk$' -q --csv -o "$OUT/matvec_vk.csv" --json "$OUT/matvec_vk.json" "$@"
echo "suite exit $?"
cat "$OUT/machine.txt" "$OUT/list.txt" | grep -v "^      " | head -40
tail -5 "$OUT/tests.txt"
grep -E "read|14336 cols=4096 tokens=1|128256" "$OUT/matvec_vk.csv" | cut -d, -f1-7,14,21-24
