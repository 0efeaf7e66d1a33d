#!/usr/bin/env bash
# The runs of this folder (README.md), from the repository root after a default build, each
# under the shared CPU lock. KB=build/kbench; DIR=results/zen4-2c/model.
set -euo pipefail
KB=${KB:-build/kbench}
DIR=${DIR:-results/zen4-2c/model}
L="flock /tmp/kbench-cpu.lock"
# 1. the target: llama3-8b (q4_0), 8 layers, decode at 2 threads vs the roofline, 3 rounds
for r in 1 2 3; do
  $L $KB model llama3-8b --layers 8 --backend cpu --threads 2 --prompt 16 --gen 32 -q \
    -o $DIR/llama3-8b_l8_cpu_t2_round$r.txt --json $DIR/llama3-8b_l8_cpu_t2_round$r.json
done
$L $KB model llama3-8b --layers 8 --backend cpu --threads 2 --prompt 16 --gen 32 -q --csv \
  -o $DIR/llama3-8b_l8_cpu_t2.csv
# the same with Q8_0 weights, and all 32 layers (Q4_0)
$L $KB model llama3-8b --weights q8_0 --layers 8 --backend cpu --threads 2 --prompt 16 --gen 32 -q \
  -o $DIR/llama3-8b_q8_0_l8_cpu_t2.txt --json $DIR/llama3-8b_q8_0_l8_cpu_t2.json
$L $KB model llama3-8b --layers 32 --backend cpu --threads 2 --prompt 16 --gen 16 -q \
  -o $DIR/llama3-8b_l32_cpu_t2.txt --json $DIR/llama3-8b_l32_cpu_t2.json
# 2. the diffs: every backend against the reference, 4 layers, 32 greedy steps (Vulkan on
#    lavapipe: correctness only); the CPU's f32-activation kernels (--impl avx512) beside its
#    default int8-activation matvec
$L $KB model llama3-8b --layers 4 --prompt 16 --gen 32 -q --csv -o $DIR/llama3-8b_l4_all.csv \
  --json $DIR/llama3-8b_l4_all.json
$L $KB model llama3-8b --layers 4 --prompt 16 --gen 32 --backend ref,cpu --impl avx512 -q \
  -o $DIR/llama3-8b_l4_f32path.txt --json $DIR/llama3-8b_l4_f32path.json
$L $KB model qwen3-dense --layers 4 --prompt 16 --gen 16 -q --csv -o $DIR/qwen3-dense_l4_all.csv \
  --json $DIR/qwen3-dense_l4_all.json
# 3. charts
for f in llama3-8b_l8_cpu_t2 llama3-8b_l4_all qwen3-dense_l4_all; do
  scripts/model-chart $DIR/$f.csv -o $DIR/plots --title "$f"
done
