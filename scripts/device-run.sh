#!/usr/bin/env bash
# Runs on the lent GPU machine (the device tool), from the repository root, with the binaries
# (build-dev/: kbench and tests, stripped copies of build/; the carry limit is 64 MiB) and .gl/
# carried from a Debian 12 build: unpacks the Vulkan loader, runs the kernel tests on that host
# (its CPU has AVX-512), then Vulkan attention (vk and vk_cm: decode T = 8192/32768, prefill)
# beside its read yardstick and PyTorch's SDPA on the same GPU. Results in $OUT.
#   scripts/device-run.sh            (carry: build-dev, .gl)
set -uo pipefail
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/kblib; for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/kblib; done
# hwloc and cmocka from Debian, beside the host's own libraries (never over them)
export LD_LIBRARY_PATH=/tmp/kblib/usr/lib/x86_64-linux-gnu
bin=${KB_BIN:-build-dev}
ldd $bin/kbench | grep -q "libudev.so.1 => not found" &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/kblib/lib/x86_64-linux-gnu
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
kb=./$bin/kbench
{ nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)"; $kb --list | grep -E "vk|avx512"; } > "$OUT/machine.txt" 2>&1
# every kernel test (the harness's own tests need the source tree's scripts: not run here)
(cd $bin/tests && for t in test_*; do case $t in test_read|test_matvec_*|test_attention_*)
   [ -x $t ] && { KBENCH=../kbench timeout 200 ./$t; echo "$t exit $?"; };; esac; done) \
  > "$OUT/tests.txt" 2>&1
grep -E "exit|FAIL|ERROR|PASSED|SKIPPED" "$OUT/tests.txt"
# Llama-3-8B (32 q / 8 kv x 128) and Qwen3.5 full attention (32 q / 2 kv x 256), f16 cache;
# read rows of the decode caches' sizes (32, 128 MiB Llama; 64 MiB Qwen T = 32768)
cat > /tmp/att.suite <<'S'
read mib=32,64,128 label=read.yardstick
attn_decode heads=32 kv_heads=8 head_dim=128 T=8192,32768 label=llama3-8b
attn_decode heads=32 kv_heads=2 head_dim=256 T=8192,32768 label=qwen35.full
attn_prefill heads=32 kv_heads=8 head_dim=128 n_q=4096 label=llama3-8b
attn_prefill heads=32 kv_heads=2 head_dim=256 n_q=2048 label=qwen35.full
S
timeout 420 $kb --suite /tmp/att.suite --impl '^vk' -q --csv -o "$OUT/attention_vk.csv" \
  --json "$OUT/attention_vk.json"
echo "attention exit $?"
python3 scripts/torch_sdpa.py 32 8 128 4096 32 2 256 2048 > "$OUT/torch_sdpa.csv" 2>&1
cat "$OUT/machine.txt" "$OUT/torch_sdpa.csv"
cut -d, -f1,3,4,7,8,14,23,24,25 "$OUT/attention_vk.csv"
