#!/usr/bin/env bash
# Runs on the lent GPU machine (the device tool), from the repository root, with prebuilt
# binaries carried (.devbin/build-dev.tar.xz: kbench and the test programs, stripped copies of a
# default build made with .toolchain/glslang15, so every shader variant is in; xz because the
# carry limit is 64 MiB and the 40 programs are 58 MB) and
# the Vulkan loader and libraries as Debian 12 packages (.gl/, .gl/extra/). Builds nothing.
# Made here with: cmake --build --preset default; mkdir -p build-dev/tests; cp build/kbench
# build-dev; cp build/tests/test_* build-dev/tests; strip build-dev/kbench build-dev/tests/*;
# tar -cJf .devbin/build-dev.tar.xz build-dev   (then carry .gl and .devbin)
#   scripts/device-run.sh A   machine facts, every test program (the host's AVX-512/VNNI/AMX
#                             and the GPU's Vulkan, NV and KHR cooperative matrices; KB_TESTS=RE
#                             picks some), suites/gpu.suite with every Vulkan implementation,
#                             then the PyTorch yardsticks (matvec bf16, SDPA, GEMM, MLA,
#                             routing, GatedDeltaNet) in the same call
#   scripts/device-run.sh B   the persistent attention decode, kbench model
#                             (llama3-8b on Vulkan: 32 layers, context 1024; and a diff run)
# Files in $OUT (the device tool brings back at most 8): machine.txt and A: tests.txt,
# gpu.csv, gpu.json, torch.txt; B: attn_persistent.csv, model.txt, model_diff.txt.
# Every step has a time limit, so that one call stays inside the tool's 10 minutes.
set -uo pipefail
part=${1:?usage: scripts/device-run.sh A|B}
for f in .gl/*.deb; do dpkg -x "$f" /; done; ldconfig
mkdir -p /tmp/kblib; for f in .gl/extra/*.deb; do dpkg -x "$f" /tmp/kblib; done
# hwloc, cmocka and udev from Debian, beside the host's own libraries (never over them)
export LD_LIBRARY_PATH=/tmp/kblib/usr/lib/x86_64-linux-gnu
bin=${KB_BIN:-build-dev}
[ -x $bin/kbench ] || tar -xJf .devbin/build-dev.tar.xz
ldd $bin/kbench | grep -q "libudev.so.1 => not found" &&
  export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:/tmp/kblib/lib/x86_64-linux-gnu
# the NVIDIA driver's ICD where the loader does not find it by itself
icd=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
[ -f $icd ] && export VK_DRIVER_FILES=$icd
OUT=${OUT:-/tmp/out}; mkdir -p "$OUT"
kb=./$bin/kbench
export KB_DATA_DIR=$PWD
{ date -u; nvidia-smi -L; lscpu | grep -E "Model name|^CPU\(s\)|Flags" | sed 's/Flags:/Flags:/' | cut -c1-2000
  $kb --version; $kb --list | grep -vE "^ *$" ; } > "$OUT/machine.txt" 2>&1
head -4 "$OUT/machine.txt"

if [ "$part" = A ]; then
  # every test program, 6 at a time, each at most 240 s (the harness's script tests need the
  # source tree's build layout: not run here)
  rm -f /tmp/t_test_*.log
  (cd $bin/tests && ls test_* | grep -E "${KB_TESTS:-.}" | xargs -P 6 -I{} sh -c \
     'KBENCH=../kbench timeout ${KB_TEST_LIMIT:-240} ./{} > /tmp/t_{}.log 2>&1; echo "{} exit $?" >> /tmp/t_{}.log'
   cat /tmp/t_test_*.log) > "$OUT/tests.txt" 2>&1
  grep -E " exit [0-9]+$" "$OUT/tests.txt" | sort | uniq -c | sort -rn | head -60
  grep -cE "\[  FAILED  \]|\[  ERROR   \]" "$OUT/tests.txt"
  timeout 300 $kb --suite gpu --impl '^vk' -q --csv -o "$OUT/gpu.csv" --json "$OUT/gpu.json"
  echo "gpu suite exit $?"
  cut -d, -f1,2,3,4,7,8,10,11,12 "$OUT/gpu.csv" 2>/dev/null
  export PYTHONUNBUFFERED=1
  [ -n "${KB_NO_TORCH:-}" ] || {
    echo "## torch_yardstick.py"; timeout 60 python3 scripts/torch_yardstick.py
    echo "## torch_mma.py"; timeout 30 python3 scripts/torch_mma.py 512 14336 4096
    echo "## torch_sdpa.py"; timeout 30 python3 scripts/torch_sdpa.py 32 8 128 4096
    echo "## torch_mla.py"; timeout 30 python3 scripts/torch_mla.py
    echo "## torch_moe_route.py"; timeout 30 python3 scripts/torch_moe_route.py 1 4096
    echo "## torch_gdn.py"; timeout 30 python3 scripts/torch_gdn.py 1 16
  } > "$OUT/torch.txt" 2>&1
  cat "$OUT/torch.txt" | grep -v "^#" | head -80
elif [ "$part" = B ]; then
  printf 'read mib=64,128 label=read.yardstick\nattn_decode heads=32 kv_heads=8 head_dim=128 T=32768 label=llama3-8b\nattn_decode heads=32 kv_heads=2 head_dim=256 T=32768 label=qwen35.full\n' > /tmp/pd.suite
  for v in direct persistent; do
    KB_VK_ATTN_DECODE=$v timeout 60 $kb --suite /tmp/pd.suite --impl '^vk$' -q --csv |
      sed "s/,vk,/,vk-$v,/"
  done > "$OUT/attn_persistent.csv" 2>&1
  cut -d, -f1,3,4,10,11,12 "$OUT/attn_persistent.csv"
  timeout 200 $kb model llama3-8b --backend vk --layers 32 --prompt 1024 --gen 32 -q \
    -o "$OUT/model.txt"; echo "model exit $?"; head -12 "$OUT/model.txt"
  timeout 120 $kb model llama3-8b --backend ref,cpu,vk --layers 2 --prompt 16 --gen 16 -q \
    -o "$OUT/model_diff.txt"; echo "model diff exit $?"; head -12 "$OUT/model_diff.txt"
fi
