#!/usr/bin/env bash
# Runs on the lent GPU machine (the device tool), from the repository root, with build/ and .gl/
# carried from a Debian 12 build: unpacks the Vulkan loader, runs the kernel tests on that host
# (its CPU has AVX-512), the Vulkan rows of the matvec suite, Vulkan attention (decode T=32768,
# prefill 4096) beside PyTorch's SDPA, and calibrates the GPU. Results in $OUT.
#   scripts/device-run.sh
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/kblib; for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/kblib; done
# hwloc and cmocka from Debian, beside the host's own libraries (never over them)
export LD_LIBRARY_PATH=/tmp/kblib/usr/lib/x86_64-linux-gnu
ldd build/kbench | grep -q "libudev.so.1 => not found" &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/kblib/lib/x86_64-linux-gnu
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
kb=./build/kbench
{ nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)"; } > "$OUT/machine.txt" 2>&1
(cd build/tests && for t in test_impls test_impls_affine test_attention test_vulkan test_vulkan_affine \
   test_vulkan_attention; do [ -x $t ] && { KBENCH=../kbench timeout 120 ./$t; echo "$t exit $?"; }; done) \
  > "$OUT/tests.txt" 2>&1
$kb --suite matvec --impl '^vk$' -q --csv -o "$OUT/matvec_vk.csv" --json "$OUT/matvec_vk.json"
echo "matvec exit $?"
$kb --kernel 'read|attn_(decode|prefill)' --impl '^vk$' -q --csv -o "$OUT/attention_vk.csv" \
  --json "$OUT/attention_vk.json" \
  --shape heads=32,kv_heads=8,head_dim=128,T=8192,32768,n_q=4096,p0=0,kv_f16=1,mib=256
echo "attention exit $?"
python3 scripts/torch_sdpa.py 32 8 128 4096 > "$OUT/torch_sdpa.csv" 2>&1
$kb calibrate --threads 1 -o "$OUT/calibration.json" > "$OUT/calibrate.txt" 2>&1
cat "$OUT/machine.txt" "$OUT/calibrate.txt" "$OUT/torch_sdpa.csv"
grep -E "exit|FAIL|ERROR|PASSED|SKIPPED" "$OUT/tests.txt"
cut -d, -f1,3,4,7,14,23,25 "$OUT/attention_vk.csv"
grep -E "^read|14336 cols=4096 tokens=1|128256|experts=10" "$OUT/matvec_vk.csv" | cut -d, -f1,3,4,7,14,23,25
