#!/usr/bin/env python3
"""PyTorch's f16 GEMM on the GPU, the yardstick of kbench's Vulkan mma rows (suites/mma_gpu.suite)
in the same call: C = A W^T, A [M, K] and W [N, K] in f16 (torch.matmul), CUDA events around each
call, median of 50 after 20 warm-up calls. Prints one CSV line per shape:
label,M,N,K,dtype,median_s,min_s,tflops  (flops = 2 M N K, kbench's cost model).
    scripts/torch_mma.py [--bf16] [M N K ...]   (default: the shapes of suites/mma_gpu.suite)"""
import statistics, sys
import torch

SHAPES = [  # M, N, K, label: suites/mma_gpu.suite
    (512, 14336, 4096, "llama3-8b.ffn_gate_up"),
    (16, 14336, 4096, "llama3-8b.ffn_gate_up"), (64, 14336, 4096, "llama3-8b.ffn_gate_up"),
    (2048, 14336, 4096, "llama3-8b.ffn_gate_up"),
    (16, 4096, 4096, "llama3-8b.attn_q_o"), (64, 4096, 4096, "llama3-8b.attn_q_o"),
    (512, 4096, 4096, "llama3-8b.attn_q_o"), (512, 1024, 4096, "llama3-8b.attn_k_v"),
    (512, 4096, 14336, "llama3-8b.ffn_down"),
    (64, 1024, 4096, "qwen35.expert_gate_up"), (256, 1024, 4096, "qwen35.expert_gate_up"),
]

def bench(m, n, k, label, dtype):
    a = torch.randn(m, k, device="cuda", dtype=dtype)
    w = torch.randn(n, k, device="cuda", dtype=dtype)
    f = lambda: torch.matmul(a, w.t())
    for _ in range(20):  # warm-up, clocks up
        f()
    torch.cuda.synchronize()
    times = []
    for _ in range(50):
        s, e = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        s.record(); f(); e.record()
        torch.cuda.synchronize()
        times.append(s.elapsed_time(e) * 1e-3)
    med = statistics.median(times)
    name = "f16" if dtype == torch.float16 else "bf16"
    print(f"{label},{m},{n},{k},{name},{med:.6g},{min(times):.6g},{2.0 * m * n * k / med * 1e-12:.1f}")

args = sys.argv[1:]
dtype = torch.bfloat16 if "--bf16" in args else torch.float16
nums = [int(x) for x in args if x != "--bf16"]
shapes = [(nums[i], nums[i + 1], nums[i + 2], "cli") for i in range(0, len(nums), 3)] or SHAPES
print("label,M,N,K,dtype,median_s,min_s,tflops")
for s in shapes:
    bench(*s, dtype)
