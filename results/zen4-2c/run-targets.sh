#!/usr/bin/env bash
# The CPU target runs of issues 12, 13, 15, 16 and the suite timings of issue 11 on the Zen 4 VM
# (AMD EPYC family 25, 2 cores, AVX-512 F/BW/VL/VNNI/BF16), from the repository root after a
# default build, each under the shared CPU lock. Outputs beside this script.
set -uo pipefail
KB=${KB:-build/kbench}; D=results/zen4-2c; L="flock /tmp/kbench-cpu.lock"
# 12: M = 512, 14336 x 4096, 2 threads: f32-FMA (avx512), int8 (avx512vnni), bf16 paths
$L $KB --kernel '^mma_(q4_0|f16)$' --shape M=512,N=14336,K=4096 --impl '^avx512' --threads 2 \
  --max-time 3 -q --csv -o $D/mma/targets.csv --json $D/mma/targets.json
# 13: decode beside its read, interleaved, 1 and 2 threads; prefill chunkwise vs sequential
$L $KB --suite $D/gdn/targets.suite --impl '^avx512$' --threads 1,2 --interleave --max-time 2 -q \
  --csv -o $D/gdn/decode.csv --json $D/gdn/decode.json
$L $KB --suite $D/gdn/prefill.suite --impl 'avx512' --threads 2 --max-time 3 -q \
  --csv -o $D/gdn/prefill.csv --json $D/gdn/prefill.json
# 15: the a4 decode FFN of Qwen3.5 beside the read of its experts' bytes, interleaved
$L $KB --suite $D/moe/targets.suite --impl '^avx512' --threads 1,2 --interleave --max-time 2 -q \
  --csv -o $D/moe/decode.csv --json $D/moe/decode.json
# 16: llama3-8b (q4_0), 8 layers, decode at 2 threads against the roofline
$L $KB model llama3-8b --layers 8 --backend cpu --threads 2 --prompt 16 --gen 32 -q \
  -o $D/model/llama3-8b_l8_cpu_t2.txt --json $D/model/llama3-8b_l8_cpu_t2.json
# 11: the matvec suite whole (every implementation, Vulkan on lavapipe), wall time and peak RSS
$L /usr/bin/time -v $KB --suite matvec -q --csv -o $D/suites/matvec.csv --json $D/suites/matvec.json \
  2> $D/suites/matvec.time.txt
